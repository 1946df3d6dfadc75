//! Accounts and sessions: login, token refresh and logout, and the account records an
//! administrator manages. Passwords are hashed with Argon2id off the async runtime.

use super::tokens::{new_refresh_token, refresh_hash};
use super::{Caller, Error, FieldError, Services};
use crate::audit;
use crate::domain::{Duty, Role, roles};
use crate::store::{NewAuditEvent, NewRefreshToken, Organisation, RefreshOutcome, User};
use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: UserView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub duties: Vec<Duty>,
    pub organisation_id: Option<String>,
    /// A demo account from the development seed.
    pub demo: bool,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganisationView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub uscc: Option<String>,
}

impl From<Organisation> for OrganisationView {
    fn from(o: Organisation) -> Self {
        OrganisationView {
            id: o.id,
            kind: o.kind,
            name: o.name,
            uscc: o.uscc,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub display_name: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub duties: Vec<Duty>,
    #[serde(default)]
    pub organisation_id: Option<String>,
}

pub fn view(u: &User) -> Result<UserView, Error> {
    Ok(UserView {
        id: u.id.clone(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        role: u
            .role
            .parse()
            .map_err(|e| anyhow::anyhow!("user {}: {e}", u.id))?,
        duties: roles::duties_from_column(&u.duties)
            .map_err(|e| anyhow::anyhow!("user {}: {e}", u.id))?,
        organisation_id: u.organisation_id.clone(),
        demo: u.demo,
        disabled: u.disabled,
        created_at: u.created_at,
    })
}

fn invalid_credentials() -> Error {
    Error::Unauthenticated {
        code: "invalid_credentials",
        message: "用户名或密码不正确。".into(),
    }
}

/// A hash of a password nobody has, verified when the account does not exist so that the answer
/// takes as long as for a real account.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub async fn hash_password(s: &Services, password: String) -> Result<String, Error> {
    s.hashing
        .run(move || {
            let mut salt = [0u8; 16];
            openssl::rand::rand_bytes(&mut salt).context("random salt")?;
            let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            let argon = Argon2::default();
            let mut raw = [0u8; 32];
            let mut salt_bytes = [0u8; 64];
            let salt_raw = salt
                .decode_b64(&mut salt_bytes)
                .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            with_memory(argon.params(), |blocks| {
                argon.hash_password_into_with_memory(
                    password.as_bytes(),
                    salt_raw,
                    &mut raw,
                    blocks,
                )
            })
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
            let phc = PasswordHash {
                algorithm: argon2::ARGON2ID_IDENT,
                version: Some(argon2::Version::V0x13.into()),
                params: argon
                    .params()
                    .try_into()
                    .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
                salt: Some(salt.as_salt()),
                hash: Some(
                    argon2::password_hash::Output::new(&raw)
                        .map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?,
                ),
            };
            Ok::<_, anyhow::Error>(phc.to_string())
        })
        .await?
        .map_err(Error::Internal)
}

/// Argon2's working memory (19 MiB with the default parameters), kept between hashes: hashes run
/// in a few slots, so a few buffers serve every sign-in. Allocating it for each hash on
/// whichever blocking thread ran it left glibc holding a freed 19 MiB per thread, and a burst of
/// sign-ins grew the process by hundreds of megabytes that it never gave back.
fn with_memory<T>(params: &argon2::Params, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    static SPARE: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());
    let need = params.block_count();
    let mut blocks = SPARE
        .lock()
        .ok()
        .and_then(|mut v| v.pop())
        .unwrap_or_default();
    if blocks.len() != need {
        blocks = vec![argon2::Block::default(); need];
    }
    let out = f(&mut blocks);
    if let Ok(mut spare) = SPARE.lock()
        && spare.len() < 64
    {
        spare.push(blocks);
    }
    out
}

/// The stored "hash" of an account that has no password (it signs in with codes sent to its
/// phone): never a valid PHC string, so no password matches it.
const NO_PASSWORD: &str = "!no-password";

async fn verify_password(s: &Services, password: String, hash: String) -> Result<bool, Error> {
    s.hashing
        .run(move || {
            if hash == NO_PASSWORD {
                return Ok(false);
            }
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            // The parameters stored with the hash, the memory from the spare buffers.
            let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
                return Ok(false);
            };
            let algorithm = argon2::Algorithm::try_from(parsed.algorithm)
                .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let version = parsed
                .version
                .map(argon2::Version::try_from)
                .transpose()
                .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?
                .unwrap_or_default();
            let params = argon2::Params::try_from(&parsed)
                .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let argon = Argon2::new(algorithm, version, params);
            let mut salt_bytes = [0u8; 64];
            let salt_raw = salt
                .decode_b64(&mut salt_bytes)
                .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let mut raw = vec![0u8; expected.len()];
            let computed = with_memory(argon.params(), |blocks| {
                argon.hash_password_into_with_memory(
                    password.as_bytes(),
                    salt_raw,
                    &mut raw,
                    blocks,
                )
            });
            Ok::<_, anyhow::Error>(
                computed.is_ok() && openssl::memcmp::eq(&raw, expected.as_bytes()),
            )
        })
        .await?
        .map_err(Error::Internal)
}

pub async fn login(
    s: &Services,
    username: &str,
    password: &str,
    source: &str,
) -> Result<TokenPair, Error> {
    if let Err(wait) = s.limiter.admit(username, source).await? {
        return Err(Error::RateLimited {
            code: "too_many_login_attempts",
            message: format!("登录尝试过于频繁，请在 {wait} 秒后再试。"),
            retry_after_secs: wait,
        });
    }
    let user = s.store.user_by_username(username).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => match DUMMY_HASH.get() {
            Some(h) => h.clone(),
            None => {
                let h = hash_password(s, "dummy password that matches nothing".into()).await?;
                DUMMY_HASH.get_or_init(|| h).clone()
            }
        },
    };
    // An account without a password is checked against the dummy hash, so that the answer
    // takes as long.
    let hash = if hash == NO_PASSWORD {
        match DUMMY_HASH.get() {
            Some(h) => h.clone(),
            None => {
                let h = hash_password(s, "dummy password that matches nothing".into()).await?;
                DUMMY_HASH.get_or_init(|| h).clone()
            }
        }
    } else {
        hash
    };
    let ok = verify_password(s, password.to_owned(), hash).await?
        && user
            .as_ref()
            .is_some_and(|u| u.password_hash != NO_PASSWORD);
    let Some(user) = user.filter(|_| ok) else {
        s.limiter.failed(username).await?;
        record(s, None, "auth.login_failed", "account", username, source).await?;
        return Err(invalid_credentials());
    };
    s.limiter.succeeded(username).await?;
    if user.disabled {
        return Err(Error::forbidden("该账号已停用，请联系管理员。"));
    }
    let now = OffsetDateTime::now_utc();
    let (refresh, refresh_hash) = new_refresh_token();
    s.store
        .insert_refresh_token(&NewRefreshToken {
            id: uuid::Uuid::now_v7().to_string(),
            family_id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            token_hash: refresh_hash,
            created_at: now,
            expires_at: now + time::Duration::seconds(s.tokens.refresh_ttl_secs as i64),
        })
        .await?;
    let pair = token_pair(s, &user, refresh, now)?;
    record(s, Some(&user), "auth.login", "user", &user.id, source).await?;
    Ok(pair)
}

fn token_pair(
    s: &Services,
    user: &User,
    refresh: String,
    now: OffsetDateTime,
) -> Result<TokenPair, Error> {
    let view = view(user)?;
    let (access, _) = s.tokens.issue_access(
        &user.id,
        view.role,
        view.duties.clone(),
        user.organisation_id.clone(),
        now,
    )?;
    Ok(TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: s.tokens.access_ttl_secs,
        refresh_token: refresh,
        refresh_expires_in: s.tokens.refresh_ttl_secs,
        user: view,
    })
}

fn invalid_refresh(code: &'static str) -> Error {
    Error::Unauthenticated {
        code,
        message: "登录已失效，请重新登录。".into(),
    }
}

/// Exchanges a refresh token for a new pair. Each refresh token works once; presenting a used one
/// again means it was copied, so its whole family is revoked.
pub async fn refresh(s: &Services, token: &str, source: &str) -> Result<TokenPair, Error> {
    let now = OffsetDateTime::now_utc();
    let (next, next_hash) = new_refresh_token();
    let outcome = s
        .store
        .rotate_refresh_token(
            &refresh_hash(token),
            &NewRefreshToken {
                id: uuid::Uuid::now_v7().to_string(),
                family_id: String::new(),
                user_id: String::new(),
                token_hash: next_hash,
                created_at: now,
                expires_at: now + time::Duration::seconds(s.tokens.refresh_ttl_secs as i64),
            },
            now,
        )
        .await?;
    let user_id = match outcome {
        RefreshOutcome::Rotated { user_id } => user_id,
        RefreshOutcome::Reused => {
            tracing::warn!("a used refresh token was presented again; its family is revoked");
            return Err(invalid_refresh("refresh_token_reused"));
        }
        RefreshOutcome::Expired | RefreshOutcome::Revoked | RefreshOutcome::Unknown => {
            return Err(invalid_refresh("invalid_refresh_token"));
        }
    };
    let user = s
        .store
        .user(&user_id)
        .await?
        .context("refresh token of a missing user")?;
    if user.disabled {
        return Err(Error::forbidden("该账号已停用，请联系管理员。"));
    }
    let _ = source;
    token_pair(s, &user, next, now)
}

pub async fn logout(s: &Services, token: &str, source: &str) -> Result<(), Error> {
    let now = OffsetDateTime::now_utc();
    if let Some(user_id) = s
        .store
        .revoke_refresh_family(&refresh_hash(token), now)
        .await?
    {
        let user = s.store.user(&user_id).await?;
        record(s, user.as_ref(), "auth.logout", "user", &user_id, source).await?;
    }
    Ok(())
}

pub async fn me(s: &Services, caller: &Caller) -> Result<UserView, Error> {
    let user = s
        .store
        .user(&caller.user_id)
        .await?
        .ok_or_else(|| Error::not_found("该账号"))?;
    view(&user)
}

/// One account: administrators see any, everyone else only their own.
pub async fn get_user(s: &Services, caller: &Caller, id: &str) -> Result<UserView, Error> {
    if !(caller.is(Role::Admin) || caller.user_id == id) {
        return Err(Error::not_found("该账号"));
    }
    let user = s
        .store
        .user(id)
        .await?
        .ok_or_else(|| Error::not_found("该账号"))?;
    view(&user)
}

pub async fn list_users(s: &Services, caller: &Caller) -> Result<Vec<UserView>, Error> {
    if !caller.is(Role::Admin) {
        return Err(Error::forbidden("只有管理员可以查看账号列表。"));
    }
    s.store.users().await?.iter().map(view).collect()
}

/// An organisation: administrators and reviewers see any, developers only their own.
pub async fn get_organisation(
    s: &Services,
    caller: &Caller,
    id: &str,
) -> Result<OrganisationView, Error> {
    let allowed = match caller.role {
        Role::Admin | Role::Reviewer => true,
        Role::Developer => caller.organisation_id.as_deref() == Some(id),
        Role::Buyer => false,
    };
    if !allowed {
        return Err(Error::not_found("该机构"));
    }
    let org = s
        .store
        .organisation(id)
        .await?
        .ok_or_else(|| Error::not_found("该机构"))?;
    Ok(org.into())
}

pub fn validate_new_user(req: &NewUserRequest) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name_ok = req.username.len() >= 3
        && req.username.len() <= 64
        && req
            .username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        errors.push(FieldError::new(
            "username",
            "format",
            "用户名须为 3–64 位小写字母、数字或 . _ -。",
        ));
    }
    let display = req.display_name.trim();
    if display.is_empty() || display.chars().count() > 64 || display.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "display_name",
            "length",
            "显示名称须为 1–64 个字符。",
        ));
    }
    if req.password.chars().count() < 12 || req.password.len() > 256 {
        errors.push(FieldError::new(
            "password",
            "too_short",
            "密码至少 12 个字符。",
        ));
    }
    let allowed = req.role.allowed_duties();
    for (i, d) in req.duties.iter().enumerate() {
        if !allowed.contains(d) {
            errors.push(FieldError::new(
                format!("duties[{i}]"),
                "not_allowed_for_role",
                format!("角色 {} 不能担任职责 {}。", req.role, d),
            ));
        }
    }
    if req.role == Role::Developer && req.duties.is_empty() {
        errors.push(FieldError::new(
            "duties",
            "required",
            "开发企业人员须指定拟签或确认职责。",
        ));
    }
    match (req.role.needs_organisation(), &req.organisation_id) {
        (true, None) => errors.push(FieldError::new(
            "organisation_id",
            "required",
            "开发企业人员须属于一个开发企业。",
        )),
        (false, Some(_)) if req.role == Role::Buyer => errors.push(FieldError::new(
            "organisation_id",
            "not_allowed_for_role",
            "买受人账号不属于任何机构。",
        )),
        _ => {}
    }
    errors
}

pub async fn create_user(
    s: &Services,
    caller: &Caller,
    req: NewUserRequest,
) -> Result<UserView, Error> {
    if !caller.is(Role::Admin) {
        return Err(Error::forbidden("只有管理员可以创建账号。"));
    }
    let errors = validate_new_user(&req);
    if !errors.is_empty() {
        return Err(Error::invalid(errors));
    }
    if let Some(org_id) = &req.organisation_id {
        let org = s.store.organisation(org_id).await?;
        let fits = match (&org, req.role) {
            (Some(o), Role::Developer) => o.kind == "developer",
            (Some(o), Role::Reviewer) => o.kind == "registration_centre",
            (Some(_), _) => true,
            (None, _) => false,
        };
        if !fits {
            return Err(Error::invalid(vec![FieldError::new(
                "organisation_id",
                "unknown_or_wrong_kind",
                "机构不存在，或与角色不符。",
            )]));
        }
    }
    if s.store.user_by_username(&req.username).await?.is_some() {
        return Err(Error::conflict("username_taken", "用户名已被使用。"));
    }
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        username: req.username,
        display_name: req.display_name.trim().to_owned(),
        role: req.role.as_str().to_owned(),
        duties: roles::duties_to_column(&req.duties),
        organisation_id: req.organisation_id,
        password_hash: hash_password(s, req.password).await?,
        demo: false,
        disabled: false,
        created_at: OffsetDateTime::now_utc(),
    };
    s.store.insert_user(&user).await.map_err(|e| match e {
        crate::store::StoreError::Conflict { .. } => {
            Error::conflict("username_taken", "用户名已被使用。")
        }
        other => other.into(),
    })?;
    let actor = s.store.user(&caller.user_id).await?;
    record(
        s,
        actor.as_ref(),
        "user.create",
        "user",
        &user.id,
        caller.source.as_deref().unwrap_or(""),
    )
    .await?;
    view(&user)
}

async fn record(
    s: &Services,
    actor: Option<&User>,
    action: &str,
    object_kind: &str,
    object_id: &str,
    source: &str,
) -> Result<(), Error> {
    audit::append(
        s.store.as_ref(),
        NewAuditEvent {
            at: OffsetDateTime::now_utc(),
            actor_id: actor.map(|u| u.id.clone()),
            actor_role: actor.map(|u| u.role.clone()),
            action: action.into(),
            object_kind: object_kind.into(),
            object_id: object_id.into(),
            object_hash: None,
            source: (!source.is_empty()).then(|| source.to_owned()),
            detail: "{}".into(),
        },
    )
    .await?;
    Ok(())
}

/// A mainland mobile number in its plain eleven digits (`+86`, spaces and dashes dropped).
pub fn parse_phone(input: &str) -> Result<String, Error> {
    let digits: String = input
        .trim()
        .trim_start_matches("+86")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let ok = digits.len() == 11
        && digits.starts_with('1')
        && matches!(digits.as_bytes()[1], b'3'..=b'9')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(Error::invalid(vec![FieldError::new(
            "phone",
            "mobile_number",
            "请输入 11 位中国大陆手机号码。",
        )]));
    }
    Ok(digits)
}

/// `138****0001`: a number as pages show it.
pub fn mask_phone(phone: &str) -> String {
    if phone.len() != 11 {
        return "*".repeat(phone.len());
    }
    format!("{}****{}", &phone[..3], &phone[7..])
}

/// A sign-in code on its way to a mobile number.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhoneChallengeView {
    pub challenge_id: String,
    pub phone_masked: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Seconds until another code may be asked for.
    pub resend_after_secs: u64,
    /// The code itself, shown on screen only by the development sandbox gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_code: Option<String>,
}

/// Sends a one-time sign-in code to a mobile number (a buyer signs up or signs in with it). The
/// number is kept only encrypted, with a keyed hash to find it; at most `sms.codes_per_hour`
/// codes an hour go to one number.
pub async fn send_phone_code(
    s: &Services,
    phone: &str,
    source: &str,
) -> Result<PhoneChallengeView, Error> {
    let phone = parse_phone(phone)?;
    let p = &s.identity.personal;
    let hash = p.lookup_hash(&format!("phone:{phone}"));
    let now = OffsetDateTime::now_utc();
    let sent = s
        .store
        .phone_challenges_since(&hash, now - time::Duration::hours(1))
        .await?;
    if sent >= s.config.sms.codes_per_hour {
        return Err(Error::RateLimited {
            code: "too_many_codes",
            message: "验证码发送过于频繁，请一小时后再试。".into(),
            retry_after_secs: 3600,
        });
    }
    let code = six_digits()?;
    let id = uuid::Uuid::now_v7().to_string();
    let expires_at = now + time::Duration::seconds(s.config.sms.code_ttl_secs as i64);
    s.store
        .insert_phone_challenge(&crate::store::PhoneChallenge {
            id: id.clone(),
            phone_hash: hash,
            phone_enc: p.encrypt(&format!("challenge/{id}"), &phone)?,
            code_hash: p.code_hash(&id, &code),
            attempts: 0,
            created_at: now,
            expires_at,
            used_at: None,
        })
        .await?;
    let sms = &s.identity.sms;
    sms.send(
        &phone,
        &format!("【虚拟窗口】您的登录验证码为 {code}，5 分钟内有效。请勿告诉他人。"),
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "SMS not sent");
        Error::Unavailable {
            code: "sms_unavailable",
            message: "短信发送失败，请稍后再试。".into(),
        }
    })?;
    audit::append(
        s.store.as_ref(),
        NewAuditEvent {
            at: now,
            actor_id: None,
            actor_role: None,
            action: "auth.phone_code".into(),
            object_kind: "phone_challenge".into(),
            object_id: id.clone(),
            object_hash: None,
            source: (!source.is_empty()).then(|| source.to_owned()),
            detail: "{}".into(),
        },
    )
    .await?;
    Ok(PhoneChallengeView {
        challenge_id: id,
        phone_masked: mask_phone(&phone),
        expires_at,
        resend_after_secs: 60,
        dev_code: sms.shows_codes().then_some(code),
    })
}

fn six_digits() -> Result<String, Error> {
    loop {
        // Uniform over 000000–999999: reject the top of the u32 range.
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).context("random")?;
        let n = u32::from_be_bytes(b);
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Signs in with a code sent to a mobile number; a number without an account gets a new buyer
/// account (the person then registers their real name and ID number and checks their face).
pub async fn phone_login(
    s: &Services,
    challenge_id: &str,
    code: &str,
    source: &str,
) -> Result<TokenPair, Error> {
    let wrong = || {
        Error::invalid(vec![FieldError::new(
            "code",
            "code_wrong",
            "验证码不正确或已失效，请重新获取。",
        )])
    };
    let Some(c) = s.store.phone_challenge(challenge_id).await? else {
        return Err(wrong());
    };
    let now = OffsetDateTime::now_utc();
    if c.used_at.is_some() || c.expires_at < now || c.attempts >= s.config.sms.code_max_attempts {
        return Err(wrong());
    }
    let p = &s.identity.personal;
    let given = p.code_hash(&c.id, code.trim());
    if !openssl::memcmp::eq(given.as_bytes(), c.code_hash.as_bytes()) {
        s.store.count_phone_attempt(&c.id).await?;
        return Err(wrong());
    }
    if !s.store.use_phone_challenge(&c.id, now).await? {
        return Err(wrong());
    }
    let phone = p.decrypt(&format!("challenge/{}", c.id), &c.phone_enc)?;
    let user = match s.store.user_by_phone_hash(&c.phone_hash).await? {
        Some(u) => u,
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            let user = User {
                username: format!("m{}-{}", &phone[7..], &id[id.len() - 8..]),
                display_name: format!("买受人 {}", mask_phone(&phone)),
                role: Role::Buyer.as_str().into(),
                duties: String::new(),
                organisation_id: None,
                // No password (and no Argon2 hash to compute at sign-up): this account signs in
                // with codes sent to its number.
                password_hash: NO_PASSWORD.into(),
                demo: false,
                disabled: false,
                created_at: now,
                id,
            };
            let enc = p.encrypt(&user.id, &phone)?;
            if s.store
                .insert_user_with_phone(&user, &enc, &c.phone_hash)
                .await?
            {
                record(s, Some(&user), "user.signup", "user", &user.id, source).await?;
                user
            } else {
                // The same number signed up at the same moment: that account is this one.
                s.store
                    .user_by_phone_hash(&c.phone_hash)
                    .await?
                    .context("account of a number just taken")?
            }
        }
    };
    if user.disabled {
        return Err(Error::forbidden("该账号已停用，请联系管理员。"));
    }
    let (refresh, refresh_hash) = new_refresh_token();
    s.store
        .insert_refresh_token(&NewRefreshToken {
            id: uuid::Uuid::now_v7().to_string(),
            family_id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            token_hash: refresh_hash,
            created_at: now,
            expires_at: now + time::Duration::seconds(s.tokens.refresh_ttl_secs as i64),
        })
        .await?;
    let pair = token_pair(s, &user, refresh, now)?;
    record(s, Some(&user), "auth.login", "user", &user.id, source).await?;
    Ok(pair)
}

/// The person behind a page session: the session is a refresh token, looked at without being
/// used, live while neither it nor its family was used elsewhere, revoked (signing out, from the
/// pages or the API) or expired.
pub async fn page_session(
    s: &Services,
    token: &str,
    source: Option<String>,
) -> Result<(Caller, String), Error> {
    let ended = || Error::Unauthenticated {
        code: "session_ended",
        message: "登录已失效，请重新登录。".into(),
    };
    let Some(t) = s.store.refresh_token(&refresh_hash(token)).await? else {
        return Err(ended());
    };
    let now = OffsetDateTime::now_utc();
    if t.used_at.is_some() || t.revoked_at.is_some() || t.expires_at <= now {
        return Err(ended());
    }
    let user = s.store.user(&t.user_id).await?.ok_or_else(ended)?;
    if user.disabled {
        return Err(ended());
    }
    let v = view(&user)?;
    Ok((
        Caller {
            user_id: user.id,
            role: v.role,
            duties: v.duties,
            organisation_id: user.organisation_id,
            source,
            idempotency: None,
        },
        user.display_name,
    ))
}

/// A buyer's own mobile number, masked, when they have one.
pub async fn phone_of(s: &Services, caller: &Caller) -> Result<Option<String>, Error> {
    Ok(match s.store.user_phone(&caller.user_id).await? {
        Some(enc) => Some(mask_phone(
            &s.identity.personal.decrypt(&caller.user_id, &enc)?,
        )),
        None => None,
    })
}
