//! Typed configuration: built-in defaults, then a TOML file (`--config`), then `VW_*` environment
//! variables (nested keys joined by `__`, e.g. `VW_AUTH__ACCESS_TTL_SECS`), then command-line flags.
//! Production mode refuses settings that are only safe on a developer's machine.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The password every demo account gets in development. Documented in README.md; production
/// refuses to run while an account still carries the demo flag.
pub const DEV_DEMO_PASSWORD: &str = "vw-demo-2026";

/// Key ids of generated development keys start with this, so production can recognise them.
pub const DEV_KEY_PREFIX: &str = "dev-";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A value that must never reach a log: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub mode: Mode,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Where the embedded database, generated development keys and stored files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to a SQLite file in the data directory.
    pub database_url: Option<Secret>,
    /// Database connection pool size.
    pub database_max_connections: u32,
    /// The address users reach the service at (links in documents and QR codes).
    pub public_url: Option<String>,
    /// `pretty` or `json`; defaults to pretty in development and JSON in production.
    pub log_format: Option<LogFormat>,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub pki: PkiConfig,
    pub documents: DocumentsConfig,
    pub identity: IdentityConfig,
    pub workflow: WorkflowConfig,
    pub notifications: NotificationsConfig,
    pub sms: SmsConfig,
    pub web: WebConfig,
    /// Seed the demo data when `serve` starts in development on an empty database.
    pub auto_seed: bool,
    /// The CPUs this process runs on (`0`, `0-1`, `0,2-3`); unset: every CPU the system
    /// allows it. See docs/operations.md for why an instance is kept on one core.
    pub cpus: Option<CpuList>,
}

/// A set of CPU numbers, written as in `taskset -c` and Linux's `Cpus_allowed_list`: single
/// numbers and inclusive ranges separated by commas. A bare number (`cpus = 0`, `VW_CPUS=0`)
/// and a list of numbers are accepted too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

/// CPU numbers beyond this are refused (the size of Linux's `cpu_set_t`).
pub const MAX_CPUS: usize = 1024;

impl CpuList {
    /// The CPUs, ascending, each once.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    pub fn parse(text: &str) -> Result<CpuList, String> {
        let mut cpus = Vec::new();
        for part in text.split(',').map(str::trim) {
            let number = |n: &str| {
                n.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&c| c < MAX_CPUS)
                    .ok_or_else(|| format!("`{n}` is not a CPU number (0 to {})", MAX_CPUS - 1))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!("the range `{part}` runs backwards"));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(number(part)?),
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList(cpus))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for CpuList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            One(u64),
            Many(Vec<u64>),
            Text(String),
        }
        let text = match Written::deserialize(d)? {
            Written::One(n) => n.to_string(),
            Written::Many(v) => v.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            Written::Text(t) => t,
        };
        CpuList::parse(&text).map_err(|e| serde::de::Error::custom(format!("cpus: {e}")))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (signed PDFs are uploaded, so it is generous).
    pub body_limit_bytes: usize,
    /// A request that takes longer is answered with 503 `timeout`.
    pub request_timeout_secs: u64,
    /// Take the client address from the first `X-Forwarded-For` entry (only behind a trusted
    /// load balancer that overwrites the header).
    pub trust_forwarded_for: bool,
    /// How long graceful shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// How long an idempotency key's claim lasts without an answer (0: the request timeout plus
    /// 30 s); after that a retry takes the key over.
    pub idempotency_lease_secs: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Signing keys for access tokens (ES256, PKCS#8 PEM). The first entry whose `active` is true
    /// signs; every entry verifies, so a key can be rotated out gradually. Empty in development:
    /// a key is generated under `data_dir/keys/`.
    pub jwt_keys: Vec<JwtKeyConfig>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Token issuer and audience, pinned on verification.
    pub issuer: String,
    pub audience: String,
    /// Login attempts allowed per account and per source address within the window.
    pub login_attempts_per_account: u32,
    pub login_attempts_per_address: u32,
    pub login_window_secs: u64,
    /// Password hashes computed at once (0: one per core); a sign-in waits at most
    /// `hash_wait_ms` for its turn, then is answered 503 with `Retry-After`.
    pub hash_concurrency: usize,
    pub hash_wait_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// A CJK font file (.ttc/.otf/.ttf) to use instead of the bundled Noto Serif CJK SC.
    pub font_path: Option<PathBuf>,
    /// Documents rendered or signed at once (0: one per core); a request waits at most
    /// `wait_ms` for its turn, then is answered 503 with `Retry-After`.
    pub concurrency: usize,
    pub wait_ms: u64,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            font_path: None,
            concurrency: 0,
            wait_ms: 10_000,
        }
    }
}

/// The contract workflow and its scheduled jobs.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// A contract nobody has signed expires this long after it was drafted, releasing its unit.
    pub draft_expiry_secs: u64,
    /// How often each instance runs the scheduled jobs (0: never; tests run them by hand).
    pub scheduler_interval_secs: u64,
    /// An advance notice lapses this many days after ownership registration became possible,
    /// taken as the contract's delivery date ((law) 90 days).
    pub advance_notice_lapse_days: u32,
    /// Materials one account may upload in 24 hours (each at most 10 MB): storage is not a
    /// dumping ground.
    pub uploads_per_day: u32,
    /// A sealed contract is submitted for filing at once (the service's own step); otherwise it
    /// stays `sealed` until the developer submits it.
    pub submit_on_seal: bool,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        WorkflowConfig {
            draft_expiry_secs: 7 * 24 * 3600,
            scheduler_interval_secs: 60,
            advance_notice_lapse_days: 90,
            uploads_per_day: 100,
            submit_on_seal: true,
        }
    }
}

/// Which SMS gateway sends the one-time codes of signing up and signing in.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmsProviderKind {
    /// Nothing is sent; the page shows the code (development only).
    Sandbox,
    /// A gateway speaking signed JSON (docs/web.md).
    Http,
}

/// Text messages (docs/web.md): buyers sign up and sign in with a mobile number and a code.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: SmsProviderKind,
    /// The gateway's endpoint (provider `http`).
    pub url: Option<String>,
    pub key_id: String,
    /// The HMAC key of the request signature (at least 32 characters).
    pub secret: Option<Secret>,
    pub timeout_ms: u64,
    /// A sign-in code is valid this long and allows this many wrong tries.
    pub code_ttl_secs: u64,
    pub code_max_attempts: i32,
    /// Codes one number may be sent in an hour.
    pub codes_per_hour: i64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            provider: SmsProviderKind::Sandbox,
            url: None,
            key_id: "virtual-window".into(),
            secret: None,
            timeout_ms: 5000,
            code_ttl_secs: 300,
            code_max_attempts: 5,
            codes_per_hour: 5,
        }
    }
}

/// The pages (docs/web.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// A buyer signs only after opening every chapter of the exact version, and this long after
    /// opening the first.
    pub min_reading_secs: u64,
    /// Session cookies carry `Secure` (on by default in production: pages behind HTTPS).
    pub secure_cookies: Option<bool>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            min_reading_secs: 60,
            secure_cookies: None,
        }
    }
}

/// The notification outbox's webhook (docs/notifications.md): every status change of a contract
/// or registration case is posted there, signed, retried with backoff until acknowledged.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Where events are posted (an SMS/e-mail gateway). None: events wait in the outbox.
    pub webhook_url: Option<String>,
    /// The HMAC-SHA256 key of the `X-VW-Signature` header (at least 32 characters).
    pub webhook_secret: Option<Secret>,
    /// Attempts before an event becomes a dead letter.
    pub max_attempts: u32,
    /// The first retry waits this long; each later one twice as long, up to `backoff_max_secs`.
    pub backoff_base_ms: u64,
    pub backoff_max_secs: u64,
    /// One delivery attempt's time limit.
    pub timeout_ms: u64,
    /// How often each instance looks for due events (0: never; tests dispatch by hand).
    pub poll_interval_ms: u64,
    /// A claimed event is another instance's to retry after this long.
    pub lease_secs: u64,
    /// Events claimed at once.
    pub batch: i64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            webhook_url: None,
            webhook_secret: None,
            max_attempts: 12,
            backoff_base_ms: 2_000,
            backoff_max_secs: 3_600,
            timeout_ms: 5_000,
            poll_interval_ms: 1_000,
            lease_secs: 60,
            batch: 32,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PkiConfig {
    /// Where the CA certificates and their encrypted keys live; `data_dir/pki` in development.
    pub dir: Option<PathBuf>,
    /// Encrypts every CA and seal key at rest. Development generates one under
    /// `data_dir/keys/`; production must configure it.
    pub key_encryption_key: Option<Secret>,
    /// `ecdsa-p256` (default), `rsa2048` or `rsa3072`, for keys the service generates.
    pub key_algorithm: crate::pki::KeyAlgorithm,
    /// Hours a published CRL stays current (its nextUpdate).
    pub crl_validity_hours: u64,
    /// Seconds an instance serves the CRL it made again (same list of revocations; a
    /// revocation makes a new one at once): every filing embeds CRLs, and a CRL per request
    /// would sign and number one each time. 0 makes a new CRL for every request.
    pub crl_reuse_secs: u64,
    /// An event certificate needs an identity verification completed at most this long ago.
    pub event_verification_window_secs: u64,
    /// Where the long-lived private keys (CAs, time-stamping unit, seals) live: `software`
    /// (encrypted under `key_encryption_key`, in the database) or `pkcs11` (non-extractable keys
    /// on the token of `pkcs11`, shared by every instance).
    pub custody: KeyCustody,
    pub pkcs11: Option<Pkcs11Config>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyCustody {
    #[default]
    Software,
    Pkcs11,
}

/// A PKCS#11 token (an HSM; SoftHSM2 in the tests).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The module (shared library) of the token's vendor.
    pub module: PathBuf,
    pub token_label: String,
    /// The user PIN.
    pub pin: Secret,
}

impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            custody: KeyCustody::Software,
            pkcs11: None,
            dir: None,
            key_encryption_key: None,
            key_algorithm: crate::pki::KeyAlgorithm::EcdsaP256,
            crl_validity_hours: 24,
            crl_reuse_secs: 300,
            event_verification_window_secs: 600,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityProviderKind {
    /// Deterministic outcomes for development and tests (refused in production).
    Sandbox,
    /// An external provider speaking the signed JSON protocol (docs/identity.md).
    Http,
}

/// Identity checks (docs/identity.md) and personal data protection (docs/privacy.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    pub provider: IdentityProviderKind,
    /// Lowest face similarity (0–100) that passes.
    pub threshold: f64,
    /// A verification counts for signing this long after it passed.
    pub freshness_secs: u64,
    /// One-time codes: how long one is valid, how many wrong tries it takes, how many a person
    /// may ask for in an hour.
    pub code_ttl_secs: u64,
    pub code_max_attempts: i32,
    pub codes_per_hour: i64,
    /// Encrypts ID numbers at rest and keys their lookup hash (at least 32 characters).
    /// Development generates one under `data_dir/keys/`; production must configure it.
    pub personal_data_key: Option<Secret>,
    /// Signs the sandbox's callbacks (development only).
    pub sandbox_secret: Secret,
    pub http: IdentityHttpConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityHttpConfig {
    pub base_url: Option<String>,
    pub key_id: String,
    pub secret: Option<Secret>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub breaker_failures: u32,
    pub breaker_open_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            provider: IdentityProviderKind::Sandbox,
            threshold: 80.0,
            freshness_secs: 600,
            code_ttl_secs: 300,
            code_max_attempts: 5,
            codes_per_hour: 10,
            personal_data_key: None,
            sandbox_secret: Secret::new("vw-sandbox-callbacks-dev-only"),
            http: IdentityHttpConfig::default(),
        }
    }
}

impl Default for IdentityHttpConfig {
    fn default() -> Self {
        IdentityHttpConfig {
            base_url: None,
            key_id: "virtual-window".into(),
            secret: None,
            timeout_ms: 5000,
            retries: 2,
            breaker_failures: 5,
            breaker_open_secs: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    pub kid: String,
    pub private_key_file: PathBuf,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Development,
            listen: "127.0.0.1:8080".parse().expect("literal address"),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 16,
            public_url: None,
            log_format: None,
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            pki: PkiConfig::default(),
            documents: DocumentsConfig::default(),
            identity: IdentityConfig::default(),
            workflow: WorkflowConfig::default(),
            notifications: NotificationsConfig::default(),
            sms: SmsConfig::default(),
            web: WebConfig::default(),
            auto_seed: true,
            cpus: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 30,
            idempotency_lease_secs: 0,
            trust_forwarded_for: false,
            shutdown_grace_secs: 20,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_keys: Vec::new(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 14 * 24 * 3600,
            issuer: "virtual-window".into(),
            audience: "virtual-window-api".into(),
            login_attempts_per_account: 5,
            login_attempts_per_address: 30,
            login_window_secs: 15 * 60,
            hash_concurrency: 0,
            hash_wait_ms: 3000,
        }
    }
}

/// Values given on the command line; they override file and environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// Top-level keys read from `VW_*` variables; other `VW_` variables (such as the test script's
/// `VW_TEST_POSTGRES_URL`) are not configuration and are ignored.
const ENV_KEYS: &[&str] = &[
    "mode",
    "listen",
    "data_dir",
    "database_url",
    "database_max_connections",
    "public_url",
    "log_format",
    "http",
    "auth",
    "pki",
    "documents",
    "auto_seed",
    "cpus",
    "identity",
    "workflow",
    "notifications",
    "sms",
    "web",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(String),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("unsafe configuration for production: {setting}: {reason}")]
    Unsafe {
        setting: &'static str,
        reason: String,
    },
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("VW_").split("__").filter(|k| {
            let top = k
                .as_str()
                .split('.')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            ENV_KEYS.contains(&top.as_str())
        }));
        if let Some(v) = overrides.listen {
            figment = figment.merge(("listen", v.to_string()));
        }
        if let Some(v) = &overrides.data_dir {
            figment = figment.merge(("data_dir", v));
        }
        if let Some(v) = &overrides.database_url {
            figment = figment.merge(("database_url", v));
        }
        let cfg: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        Ok(cfg)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("virtual-window.db").display()
            ),
        }
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.mode {
            Mode::Development => LogFormat::Pretty,
            Mode::Production => LogFormat::Json,
        })
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join("keys")
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.pki
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("pki"))
    }

    /// Settings that production must not run with. Checks that need the database (demo accounts
    /// with the development password) are made at start-up by the service.
    pub fn check_production(&self) -> Result<(), ConfigError> {
        if self.mode != Mode::Production {
            return Ok(());
        }
        if self.auth.jwt_keys.is_empty() {
            return Err(ConfigError::Unsafe {
                setting: "auth.jwt_keys",
                reason: "no token signing key is configured (development generates one; production must name its own key files)".into(),
            });
        }
        if !self.auth.jwt_keys.iter().any(|k| k.active) {
            return Err(ConfigError::Unsafe {
                setting: "auth.jwt_keys",
                reason: "no key is marked active".into(),
            });
        }
        let dev_keys = self.keys_dir();
        for k in &self.auth.jwt_keys {
            if k.kid.starts_with(DEV_KEY_PREFIX) || k.private_key_file.starts_with(&dev_keys) {
                return Err(ConfigError::Unsafe {
                    setting: "auth.jwt_keys",
                    reason: format!("key `{}` is a generated development key", k.kid),
                });
            }
        }
        if self.auto_seed {
            return Err(ConfigError::Unsafe {
                setting: "auto_seed",
                reason: "demo data with the development password must not be loaded; set auto_seed = false".into(),
            });
        }
        if self.database_url.is_none() {
            return Err(ConfigError::Unsafe {
                setting: "database_url",
                reason: "production must name its database explicitly".into(),
            });
        }
        if self.public_url.is_none() {
            return Err(ConfigError::Unsafe {
                setting: "public_url",
                reason: "the address printed in documents and QR codes must be configured".into(),
            });
        }
        if self.pki.custody == KeyCustody::Pkcs11 && self.pki.pkcs11.is_none() {
            return Err(ConfigError::Unsafe {
                setting: "pki.pkcs11",
                reason: "key custody `pkcs11` needs the token's module, label and PIN".into(),
            });
        }
        if self.sms.provider == SmsProviderKind::Sandbox {
            return Err(ConfigError::Unsafe {
                setting: "sms.provider",
                reason:
                    "the sandbox shows sign-in codes on screen; configure the `http` SMS gateway"
                        .into(),
            });
        }
        if self.sms.url.is_none()
            || self
                .sms
                .secret
                .as_ref()
                .is_none_or(|s| s.expose().len() < 32)
        {
            return Err(ConfigError::Unsafe {
                setting: "sms",
                reason:
                    "the gateway's url and a secret of at least 32 characters must be configured"
                        .into(),
            });
        }
        if self.identity.provider == IdentityProviderKind::Sandbox {
            return Err(ConfigError::Unsafe {
                setting: "identity.provider",
                reason: "the sandbox passes anyone; configure the `http` provider of an accredited identity service".into(),
            });
        }
        if self.identity.http.base_url.is_none()
            || self
                .identity
                .http
                .secret
                .as_ref()
                .is_none_or(|s| s.expose().len() < 32)
        {
            return Err(ConfigError::Unsafe {
                setting: "identity.http",
                reason: "the provider's base_url and a shared secret of at least 32 characters must be configured".into(),
            });
        }
        if self
            .identity
            .personal_data_key
            .as_ref()
            .is_none_or(|k| k.expose().len() < 32)
        {
            return Err(ConfigError::Unsafe {
                setting: "identity.personal_data_key",
                reason: "a key of at least 32 characters must encrypt ID numbers at rest".into(),
            });
        }
        if self.notifications.webhook_url.is_some()
            && self
                .notifications
                .webhook_secret
                .as_ref()
                .is_none_or(|k| k.expose().len() < 32)
        {
            return Err(ConfigError::Unsafe {
                setting: "notifications.webhook_secret",
                reason: "webhooks must be signed with a secret of at least 32 characters".into(),
            });
        }
        match &self.pki.key_encryption_key {
            Some(k) if k.expose().len() >= 32 => {}
            _ => {
                return Err(ConfigError::Unsafe {
                    setting: "pki.key_encryption_key",
                    reason: "a key-encryption key of at least 32 characters must be configured"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let cfg = Config {
            database_url: Some(Secret::new("postgres://u:hunter2@db/vw")),
            ..Config::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn production_names_the_wrong_setting() {
        let cfg = Config {
            mode: Mode::Production,
            ..Config::default()
        };
        let err = cfg.check_production().unwrap_err().to_string();
        assert!(err.contains("auth.jwt_keys"), "{err}");
    }

    #[test]
    fn cpu_lists_read_as_taskset_writes_them() {
        let cpus = |t: &str| CpuList::parse(t).map(|c| c.cpus().to_vec());
        assert_eq!(cpus("0"), Ok(vec![0]));
        assert_eq!(cpus("0-2, 5"), Ok(vec![0, 1, 2, 5]));
        assert_eq!(cpus("3,1,1-2"), Ok(vec![1, 2, 3]));
        assert_eq!(
            CpuList::parse("0-2,5,7-8").unwrap().to_string(),
            "0-2,5,7-8"
        );
        for bad in [
            "",
            "a",
            "2-1",
            "1-",
            "-1",
            "0,,1",
            "1024",
            "0-99999999999999999999",
        ] {
            assert!(CpuList::parse(bad).is_err(), "{bad:?} was accepted");
        }
        // The forms a TOML file or a `VW_CPUS` variable gives.
        let read = |toml: &str| {
            Figment::from(Toml::string(toml))
                .extract::<Config>()
                .map(|c| c.cpus.map(|c| c.to_string()))
                .map_err(|e| e.to_string())
        };
        assert_eq!(read("cpus = 1"), Ok(Some("1".into())));
        assert_eq!(read("cpus = [0, 1, 3]"), Ok(Some("0-1,3".into())));
        assert_eq!(read("cpus = \"0-1\""), Ok(Some("0-1".into())));
        assert_eq!(read(""), Ok(None));
        let err = read("cpus = \"1-0\"").unwrap_err();
        assert!(
            err.contains("cpus: the range `1-0` runs backwards"),
            "{err}"
        );
    }
}
