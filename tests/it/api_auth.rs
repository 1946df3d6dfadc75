//! Sign-in, tokens, forged tokens, object-level access and login throttling.

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

crate::on_both_databases!(
    every_demo_account_signs_in,
    refresh_rotates_and_logout_revokes,
    buyers_and_developers_see_only_their_own,
);

async fn every_demo_account_signs_in(db: Db) {
    let app = spawn_app(db).await.unwrap();
    for (name, role) in [
        ("admin", "admin"),
        ("yj-drafter", "developer"),
        ("yj-confirmer", "developer"),
        ("buyer-zhang", "buyer"),
        ("buyer-li", "buyer"),
        ("buyer-wang", "buyer"),
        ("rc-first", "reviewer"),
        ("rc-second", "reviewer"),
        ("rc-recorder", "reviewer"),
    ] {
        let reply = app.login_reply(name).await;
        assert_eq!(reply["user"]["role"], role, "{name}");
        assert_eq!(reply["token_type"], "Bearer");
        let token = reply["access_token"].as_str().unwrap();
        let me = app.get("/api/v1/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["username"], name);
        assert!(me.body.get("password_hash").is_none(), "never shown");
    }
    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "admin", "password": "wrong password"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.code(), "invalid_credentials");
    let nobody = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "ghost", "password": "wrong password"}),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        nobody.body["detail"], wrong.body["detail"],
        "no account enumeration"
    );
}

async fn refresh_rotates_and_logout_revokes(db: Db) {
    let app = spawn_app(db).await.unwrap();
    let first = app.login_reply("buyer-li").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let r2 = second.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let token = second.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/me", Some(token)).await.status,
        StatusCode::OK
    );

    // The first refresh token is used up; presenting it again revokes the family (r2 too).
    let replay = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r1}))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code(), "refresh_token_reused");
    let after = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r2}))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.code(), "invalid_refresh_token");

    // Logout.
    let third = app.login_reply("buyer-li").await;
    let r3 = third["refresh_token"].as_str().unwrap();
    let out = app
        .post("/api/v1/auth/logout", None, json!({"refresh_token": r3}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let gone = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": r3}))
        .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}

async fn buyers_and_developers_see_only_their_own(db: Db) {
    let app = spawn_app(db).await.unwrap();
    let zhang = app.token("buyer-zhang").await;
    let zhang_id = app.user_id("buyer-zhang").await;
    let li_id = app.user_id("buyer-li").await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{zhang_id}"), Some(&zhang))
            .await
            .status,
        StatusCode::OK
    );
    let other = app
        .get(&format!("/api/v1/users/{li_id}"), Some(&zhang))
        .await;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "a buyer cannot read another buyer's data"
    );
    assert!(!other.text.contains("李娜"));
    let list = app.get("/api/v1/users", Some(&zhang)).await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);

    // A developer sees their own organisation but not another one.
    let drafter = app.token("yj-drafter").await;
    let me = app.get("/api/v1/me", Some(&drafter)).await;
    let own_org = me.body["organisation_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/organisations/{own_org}"), Some(&drafter))
            .await
            .status,
        StatusCode::OK
    );
    let centre = app
        .get("/api/v1/me", Some(&app.token("rc-first").await))
        .await
        .body["organisation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .get(&format!("/api/v1/organisations/{centre}"), Some(&drafter))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(&format!("/api/v1/organisations/{own_org}"), Some(&zhang))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "buyers have no organisation access at all"
    );
    // The admin sees everyone.
    let admin = app.token("admin").await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{li_id}"), Some(&admin))
            .await
            .status,
        StatusCode::OK
    );
    let all = app.get("/api/v1/users", Some(&admin)).await;
    assert_eq!(all.body.as_array().unwrap().len(), 10);
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn dev_key(app: &TestApp) -> Vec<u8> {
    std::fs::read(app.services.config.keys_dir().join("dev-jwt-es256.pem")).unwrap()
}

fn claims_for(app: &TestApp, sub: &str, role: &str, exp_offset: i64) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": app.services.config.auth.issuer, "aud": app.services.config.auth.audience,
        "sub": sub, "iat": now, "exp": now + exp_offset, "jti": "t", "role": role,
        "duties": [], "org": null, "typ": "access"
    })
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let buyer = app.token("buyer-zhang").await;
    let buyer_id = app.user_id("buyer-zhang").await;
    let kid = app.services.tokens.signing_kid().to_owned();
    let parts: Vec<&str> = buyer.split('.').collect();
    let ok = app.get("/api/v1/me", Some(&buyer)).await;
    assert_eq!(ok.status, StatusCode::OK);

    // 1. Payload changed (role raised to admin), signature kept.
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    let changed = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    // 2. alg none, no signature.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&payload)
    );
    // 3. A valid signature under a key id nobody configured.
    let key = EncodingKey::from_ec_pem(&dev_key(&app)).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("someone-elses-key".into());
    let wrong_kid =
        jsonwebtoken::encode(&header, &claims_for(&app, &buyer_id, "admin", 600), &key).unwrap();
    // 4. Signed by another key under the real key id.
    let other = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let other_key = EncodingKey::from_ec_pem(&other.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.clone());
    let other_signer = jsonwebtoken::encode(
        &header,
        &claims_for(&app, &buyer_id, "admin", 600),
        &other_key,
    )
    .unwrap();
    // 5. Algorithm confusion: HS256 keyed with the public key.
    let public = openssl::pkey::PKey::private_key_from_pem(&dev_key(&app))
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(
        &header,
        &claims_for(&app, &buyer_id, "admin", 600),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    // 6. Wrong audience, correctly signed.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.clone());
    let mut aud = claims_for(&app, &buyer_id, "buyer", 600);
    aud["aud"] = json!("another-service");
    let wrong_aud = jsonwebtoken::encode(&header, &aud, &key).unwrap();
    // 7. Not an access token.
    let mut typ = claims_for(&app, &buyer_id, "buyer", 600);
    typ["typ"] = json!("refresh");
    let wrong_typ = jsonwebtoken::encode(&header, &typ, &key).unwrap();

    for (what, token) in [
        ("changed payload", changed),
        ("alg none", none),
        ("unknown kid", wrong_kid),
        ("other signer", other_signer),
        ("HS256 confusion", hs),
        ("wrong audience", wrong_aud),
        ("wrong token type", wrong_typ),
    ] {
        let r = app.get("/api/v1/users", Some(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
        assert_eq!(r.code(), "invalid_token", "{what}");
        assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    }

    // 8. Expired, otherwise perfect.
    let expired =
        jsonwebtoken::encode(&header, &claims_for(&app, &buyer_id, "buyer", -120), &key).unwrap();
    let r = app.get("/api/v1/me", Some(&expired)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "token_expired");
    // The control: the same construction, not expired, works.
    let fine =
        jsonwebtoken::encode(&header, &claims_for(&app, &buyer_id, "buyer", 120), &key).unwrap();
    assert_eq!(
        app.get("/api/v1/me", Some(&fine)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_valid() {
    // Sign with key A; then configure B as active with A still listed: A's tokens still verify,
    // new tokens carry B's kid.
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let old = app.token("buyer-zhang").await;
    let dir = app.db.dir.path().to_owned();
    let a = app.services.config.keys_dir().join("dev-jwt-es256.pem");
    let b = dir.join("b.pem");
    let key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(&b, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let old_kid = app.services.tokens.signing_kid().to_owned();
    let mut cfg = (*app.services.config).clone();
    cfg.auth.jwt_keys = vec![
        virtual_window::config::JwtKeyConfig {
            kid: "key-b".into(),
            private_key_file: b,
            active: true,
        },
        virtual_window::config::JwtKeyConfig {
            kid: old_kid,
            private_key_file: a,
            active: false,
        },
    ];
    let keyring = virtual_window::services::tokens::Keyring::load(&cfg).unwrap();
    assert_eq!(keyring.signing_kid(), "key-b");
    let (pki, _) =
        virtual_window::services::pki::PkiState::open(&cfg, app.services.store.as_ref(), false)
            .await
            .unwrap();
    let services = virtual_window::services::Services::new(
        std::sync::Arc::new(cfg),
        app.services.store.clone(),
        keyring,
        pki,
    )
    .unwrap();
    virtual_window::services::pki::load_units(&services)
        .await
        .unwrap();
    let rotated = TestApp {
        router: virtual_window::app(virtual_window::AppState::new(services.clone())),
        services,
        db: app.db,
        tokens: Default::default(),
    };
    assert_eq!(
        rotated.get("/api/v1/me", Some(&old)).await.status,
        StatusCode::OK
    );
    let new = rotated.token("buyer-zhang").await;
    let header = jsonwebtoken::decode_header(&new).unwrap();
    assert_eq!(header.kid.as_deref(), Some("key-b"));
    assert_eq!(header.alg, Algorithm::ES256);
}

#[tokio::test]
async fn login_is_rate_limited_per_account_and_address() {
    let app = spawn_app_with(Db::Sqlite, |c| {
        c.auth.login_attempts_per_account = 3;
        c.auth.login_attempts_per_address = 6;
    })
    .await
    .unwrap();
    for _ in 0..3 {
        let r = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": "buyer-wang", "password": "guess guess"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The account is now locked even with the right password.
    let r = app
        .post("/api/v1/auth/login", None, json!({"username": "buyer-wang", "password": virtual_window::config::DEV_DEMO_PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.code(), "too_many_login_attempts");
    assert!(r.headers.get("retry-after").is_some());
    // Another account still works from this address…
    app.token("buyer-li").await;
    // …until the address has used its attempts.
    for _ in 0..2 {
        let _ = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": "x-y-z", "password": "nope nope"}),
            )
            .await;
    }
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "admin", "password": virtual_window::config::DEV_DEMO_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}
