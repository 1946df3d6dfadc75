//! The storage contract: the same suite on SQLite and on PostgreSQL.

use crate::helpers::{Db, open_store, test_db};
use std::collections::BTreeSet;
use std::sync::Arc;
use time::OffsetDateTime;
use virtual_window::audit::{self, ChainCheck};
use virtual_window::store::{
    NewAuditEvent, NewRefreshToken, Organisation, RefreshOutcome, StoreError, User,
};

crate::on_both_databases!(
    migrations_apply_and_report_ready,
    users_and_organisations_round_trip,
    duplicate_username_is_a_conflict,
    refresh_tokens_rotate_once_and_detect_reuse,
    concurrent_refresh_has_one_winner,
    audit_chain_appends_concurrently_and_verifies,
    audit_chain_detects_tampering,
    audit_entries_are_chained_by_the_writer_and_after_a_crash,
    two_instances_append_to_one_chain,
    reopening_keeps_data,
    seed_loads_every_unit_status,
    lent_connections_come_back_clean,
    the_latest_passed_verification_is_found_behind_later_ones,
);

fn user(name: &str, org: Option<String>) -> User {
    User {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.into(),
        display_name: "张三".into(),
        role: "developer".into(),
        duties: "drafter".into(),
        organisation_id: org,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        demo: false,
        disabled: false,
        created_at: OffsetDateTime::now_utc(),
    }
}

fn org() -> Organisation {
    Organisation {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "developer".into(),
        name: "东莞市云境置业有限公司".into(),
        uscc: Some("91441900MA4W0L7N36".into()),
        created_at: OffsetDateTime::now_utc(),
    }
}

fn refresh(hash: &str, user_id: &str) -> NewRefreshToken {
    let now = OffsetDateTime::now_utc();
    NewRefreshToken {
        id: uuid::Uuid::new_v4().to_string(),
        family_id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.into(),
        token_hash: hash.into(),
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    }
}

fn event(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: OffsetDateTime::now_utc(),
        actor_id: Some("u1".into()),
        actor_role: Some("admin".into()),
        action: action.into(),
        object_kind: "user".into(),
        object_id: "u2".into(),
        object_hash: None,
        source: Some("127.0.0.1".into()),
        detail: r#"{"note":"测试"}"#.into(),
    }
}

/// A signature needs the person's last passed face check for that purpose, found however many
/// checks (other purposes, failed, still pending) came after it; of two passed, the one
/// completed last.
async fn the_latest_passed_verification_is_found_behind_later_ones(db: Db) {
    use virtual_window::domain::identity::VerificationStatus;
    use virtual_window::store::IdentityVerification;
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    let u = user("zhang", None);
    store.insert_user(&u).await.unwrap();
    let start = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let check = |n: i64, purpose: &str, status: VerificationStatus, completed: Option<i64>| {
        IdentityVerification {
            id: format!("v{n:03}"),
            user_id: u.id.clone(),
            purpose: purpose.into(),
            provider: "standin".into(),
            provider_ref: None,
            subject_name: "张伟".into(),
            id_pseudonym: "PSN".into(),
            status,
            liveness_passed: status == VerificationStatus::Passed,
            similarity: Some(9650),
            threshold: 8000,
            evidence_digest: None,
            created_at: start + time::Duration::seconds(n),
            completed_at: completed.map(|c| start + time::Duration::seconds(c)),
            event_cert_serial: None,
            identity_matched: status == VerificationStatus::Passed,
            failure: None,
        }
    };
    let none = store
        .latest_passed_verification(&u.id, "sign_contract")
        .await
        .unwrap();
    assert!(none.is_none());
    // Two passed checks; the one started first completed last.
    store
        .insert_identity_verification(&check(
            1,
            "sign_contract",
            VerificationStatus::Passed,
            Some(900),
        ))
        .await
        .unwrap();
    store
        .insert_identity_verification(&check(
            2,
            "sign_contract",
            VerificationStatus::Passed,
            Some(50),
        ))
        .await
        .unwrap();
    // Thirty later ones that do not count: other purposes, failed, pending.
    for n in 3..33 {
        let (purpose, status, completed) = match n % 3 {
            0 => ("seal_contract", VerificationStatus::Passed, Some(1000 + n)),
            1 => ("sign_contract", VerificationStatus::Failed, Some(1000 + n)),
            _ => ("sign_contract", VerificationStatus::Pending, None),
        };
        store
            .insert_identity_verification(&check(n, purpose, status, completed))
            .await
            .unwrap();
    }
    let found = store
        .latest_passed_verification(&u.id, "sign_contract")
        .await
        .unwrap()
        .expect("a passed check behind thirty others");
    assert_eq!(found.id, "v001");
    let sealing = store
        .latest_passed_verification(&u.id, "seal_contract")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sealing.id, "v030", "the one of that purpose completed last");
}

async fn migrations_apply_and_report_ready(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = virtual_window::store::open(&t.url, 2).await.unwrap();
    let before = store.ready().await.unwrap();
    assert_eq!(before.applied, 0);
    assert!(!before.complete());
    store.migrate().await.unwrap();
    store.migrate().await.expect("migrating twice is a no-op");
    let after = store.ready().await.unwrap();
    assert!(after.complete(), "{after:?}");
    assert_eq!(after.applied, after.known);
}

async fn users_and_organisations_round_trip(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    let o = org();
    store.insert_organisation(&o).await.unwrap();
    let u = user("chen", Some(o.id.clone()));
    store.insert_user(&u).await.unwrap();
    let got = store.user_by_username("chen").await.unwrap().unwrap();
    assert_eq!(got.id, u.id);
    assert_eq!(got.display_name, "张三", "CJK text round-trips");
    assert_eq!(got.organisation_id.as_deref(), Some(o.id.as_str()));
    assert!(!got.demo && !got.disabled);
    assert_eq!(
        got.created_at.unix_timestamp(),
        u.created_at.unix_timestamp()
    );
    let got_org = store
        .organisation_by_uscc("91441900MA4W0L7N36")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_org.name, o.name);
    assert!(store.user("nobody").await.unwrap().is_none());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn duplicate_username_is_a_conflict(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    store.insert_user(&user("same", None)).await.unwrap();
    let err = store.insert_user(&user("same", None)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // A user pointing at a missing organisation is refused by the foreign key.
    let err = store
        .insert_user(&user("orphan", Some("missing".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn refresh_tokens_rotate_once_and_detect_reuse(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    let u = user("r", None);
    store.insert_user(&u).await.unwrap();
    store
        .insert_refresh_token(&refresh("h1", &u.id))
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let out = store
        .rotate_refresh_token("h1", &refresh("h2", ""), now)
        .await
        .unwrap();
    assert!(
        matches!(out, RefreshOutcome::Rotated { ref user_id } if *user_id == u.id),
        "{out:?}"
    );
    // h2 is live and belongs to the same user.
    let out = store
        .rotate_refresh_token("h2", &refresh("h3", ""), now)
        .await
        .unwrap();
    assert!(matches!(out, RefreshOutcome::Rotated { .. }), "{out:?}");
    // Presenting h1 again is a replay: the family (h3 included) is revoked.
    let out = store
        .rotate_refresh_token("h1", &refresh("h4", ""), now)
        .await
        .unwrap();
    assert!(matches!(out, RefreshOutcome::Reused), "{out:?}");
    let out = store
        .rotate_refresh_token("h3", &refresh("h5", ""), now)
        .await
        .unwrap();
    assert!(matches!(out, RefreshOutcome::Revoked), "{out:?}");
    let out = store
        .rotate_refresh_token("nope", &refresh("h6", ""), now)
        .await
        .unwrap();
    assert!(matches!(out, RefreshOutcome::Unknown), "{out:?}");
    // Expiry.
    let mut old = refresh("e1", &u.id);
    old.expires_at = now - time::Duration::seconds(1);
    store.insert_refresh_token(&old).await.unwrap();
    let out = store
        .rotate_refresh_token("e1", &refresh("e2", ""), now)
        .await
        .unwrap();
    assert!(matches!(out, RefreshOutcome::Expired), "{out:?}");
    // Logout revokes the family.
    store
        .insert_refresh_token(&refresh("l1", &u.id))
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_refresh_family("l1", now)
            .await
            .unwrap()
            .as_deref(),
        Some(u.id.as_str())
    );
    let out = store
        .rotate_refresh_token("l1", &refresh("l2", ""), now)
        .await
        .unwrap();
    assert!(matches!(out, RefreshOutcome::Revoked), "{out:?}");
}

async fn concurrent_refresh_has_one_winner(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    let u = user("c", None);
    store.insert_user(&u).await.unwrap();
    store
        .insert_refresh_token(&refresh("shared", &u.id))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_refresh_token(
                    "shared",
                    &refresh(&format!("next{i}"), ""),
                    OffsetDateTime::now_utc(),
                )
                .await
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(RefreshOutcome::Rotated { .. }) => rotated += 1,
            Ok(_) => {}
            // SQLite may report a busy database to a loser; it must never be a second winner.
            Err(StoreError::Database(_)) if db == Db::Sqlite => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        rotated, 1,
        "exactly one concurrent use of a refresh token wins"
    );
}

async fn audit_chain_appends_concurrently_and_verifies(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            audit::append(store.as_ref(), event(&format!("test.{i}"))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    match audit::verify_chain(store.as_ref()).await.unwrap() {
        ChainCheck::Intact { entries, .. } => assert_eq!(entries, 20),
        broken => panic!("{broken:?}"),
    }
    let chained = store.audit_events(0, 100).await.unwrap();
    let seqs: BTreeSet<i64> = chained.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=20).collect::<BTreeSet<i64>>(),
        "no gaps, no duplicates"
    );
    let actions: BTreeSet<String> = chained.into_iter().map(|e| e.action).collect();
    assert_eq!(actions.len(), 20, "every entry chained once");
    assert_eq!(store.audit_pending().await.unwrap(), 0);
}

/// Runs a statement on the database directly, as someone editing it behind the service would.
pub(crate) async fn behind_the_service(db: Db, url: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    }
}

/// Waits (bounded) until nothing is pending, without reading the chain (which would chain).
async fn until_chained(store: &dyn virtual_window::store::Store) {
    for _ in 0..200 {
        if store.audit_pending().await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("audit entries still pending after 5 s");
}

async fn audit_entries_are_chained_by_the_writer_and_after_a_crash(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    // An entry committed by an instance that died before chaining it: a row left pending.
    let sql = "INSERT INTO audit_pending (at, actor_id, actor_role, action, object_kind, \
               object_id, object_hash, source, detail) \
               VALUES ('2026-12-04T08:00:00Z', 'u1', 'admin', 'left.pending', 'user', 'u2', \
               NULL, NULL, '{}')";
    behind_the_service(db, &t.url, sql).await;
    // A new entry: the append returns once it is committed; the writer's chainer then chains
    // it and the one left behind, with nobody reading the chain.
    audit::append(store.as_ref(), event("after.restart"))
        .await
        .unwrap();
    until_chained(store.as_ref()).await;
    let chained = store.audit_events(0, 100).await.unwrap();
    let actions: Vec<&str> = chained.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["left.pending", "after.restart"],
        "in commit order"
    );
    match audit::verify_chain(store.as_ref()).await.unwrap() {
        ChainCheck::Intact { entries, .. } => assert_eq!(entries, 2),
        broken => panic!("{broken:?}"),
    }
}

async fn two_instances_append_to_one_chain(db: Db) {
    let t = test_db(db).await.unwrap();
    let a = open_store(&t).await;
    let b = open_store(&t).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            audit::append(store.as_ref(), event(&format!("both.{i}"))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    until_chained(a.as_ref()).await;
    match audit::verify_chain(b.as_ref()).await.unwrap() {
        ChainCheck::Intact { entries, .. } => assert_eq!(entries, 60),
        broken => panic!("{broken:?}"),
    }
    let actions: BTreeSet<String> = a
        .audit_events(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.len(), 60, "each entry chained exactly once");
}

async fn audit_chain_detects_tampering(db: Db) {
    let t = test_db(db).await.unwrap();
    let store = open_store(&t).await;
    for i in 0..3 {
        audit::append(store.as_ref(), event(&format!("a.{i}")))
            .await
            .unwrap();
    }
    audit::chain(store.as_ref()).await.unwrap();
    // Edit an entry behind the service's back.
    let sql = "UPDATE audit_events SET action = 'forged' WHERE seq = 2";
    behind_the_service(db, &t.url, sql).await;
    match audit::verify_chain(store.as_ref()).await.unwrap() {
        ChainCheck::Broken { seq, .. } => assert_eq!(seq, 2),
        intact => panic!("tampering not detected: {intact:?}"),
    }
}

async fn reopening_keeps_data(db: Db) {
    let t = test_db(db).await.unwrap();
    {
        let store = open_store(&t).await;
        store.insert_user(&user("keep", None)).await.unwrap();
        audit::append(store.as_ref(), event("kept")).await.unwrap();
    }
    // A restart: open the same database again and apply migrations again.
    let store = open_store(&t).await;
    assert!(store.user_by_username("keep").await.unwrap().is_some());
    assert!(matches!(
        audit::verify_chain(store.as_ref()).await.unwrap(),
        ChainCheck::Intact { entries: 1, .. }
    ));
}

async fn seed_loads_every_unit_status(db: Db) {
    let app = crate::helpers::spawn_app(db).await.unwrap();
    let store = &app.services.store;
    let projects = store.projects().await.unwrap();
    assert_eq!(projects.len(), 1);
    let units = store.units(&projects[0].id).await.unwrap();
    assert_eq!(units.len(), 3 * 32 * 4);
    let statuses: BTreeSet<&str> = units.iter().map(|u| u.status.as_str()).collect();
    for s in [
        "unreleased",
        "available",
        "locked",
        "signed",
        "filed",
        "advance_notice_registered",
    ] {
        assert!(statuses.contains(s), "status {s} missing from the seed");
    }
    assert!(units.iter().any(|u| u.seized), "a unit under court seizure");
    assert!(
        units.iter().any(|u| u.mortgaged),
        "a unit with a construction mortgage"
    );
    let sample = units
        .iter()
        .find(|u| u.unit_number == "441900104002GB00123F00010012")
        .expect("1栋1203 of DOMAIN.md");
    assert_eq!(
        (sample.gross_area, sample.internal_area, sample.shared_area),
        (8936, 7120, 1816)
    );
    assert_eq!(sample.filed_price_fen, 30_500 * 100);
    let re =
        |n: &str| n.len() == 28 && n[..12].bytes().all(|b| b.is_ascii_digit()) && &n[19..20] == "F";
    assert!(units.iter().all(|u| re(&u.unit_number)));
    // Seeding again changes nothing.
    let again = virtual_window::services::seed::load(&app.services)
        .await
        .unwrap();
    assert_eq!(
        again,
        virtual_window::services::seed::SeedOutcome::AlreadyPresent
    );
    assert_eq!(store.count_users().await.unwrap(), 10);
    let _ = Arc::clone(store);
}

#[test]
fn migration_lists_match() {
    use virtual_window::store::{postgres::PgStore, sqlite::SqliteStore};
    assert_eq!(SqliteStore::migrations(), PgStore::migrations());
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("migrations/sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        names("migrations/postgres"),
        "every migration exists for both databases"
    );
}

/// The store's own connection lending (store::lend), which checks a connection only when its
/// last use may have left it unusable: the wait for one is bounded and answered as the database
/// being unavailable; a transaction dropped without commit is undone before its connection is
/// lent again; a statement cancelled half-way leaves no stale answer for the next one; and on
/// PostgreSQL a connection the server ended is replaced, not lent again.
async fn lent_connections_come_back_clean(db: Db) {
    let Some(t) = test_db(db).await else {
        return;
    };
    let wait = std::time::Duration::from_secs(2);
    match db {
        Db::Sqlite => {
            let lender =
                virtual_window::store::sqlite::SqliteStore::lender(&t.url, 1, wait).unwrap();
            // Counts to three million: a few tenths of a second of work that the statement's
            // worker thread finishes even when its caller is gone.
            let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT COUNT(*) FROM c";
            lend_checks!(lender, slow);
        }
        Db::Postgres => {
            let lender = virtual_window::store::postgres::PgStore::lender(&t.url, 1, wait).unwrap();
            lend_checks!(lender, "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_sleep(0.5)");
            // The server ends the session of the one connection: at most the next statement
            // fails, as the database being unavailable (the connection is then closed; when
            // this process saw trouble lately the connection is pinged before it is lent and
            // replaced at once), and the one after runs on a new connection.
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&lender)
                .await
                .unwrap();
            let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(&t.url)
                .await
                .unwrap();
            let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(&mut other)
                .await
                .unwrap();
            assert!(ended);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            match sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .fetch_one(&lender)
                .await
            {
                Ok(first) => assert_ne!(first, pid),
                Err(lost) => assert!(StoreError::from(lost).is_unavailable()),
            }
            let next: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&lender)
                .await
                .expect("a new connection, not the ended one");
            assert_ne!(next, pid);
        }
    }
}

/// The checks every database shares, on a lender of one connection (so each loan gets the
/// connection the one before left).
macro_rules! lend_checks {
    ($lender:expr, $slow:expr) => {{
        use sqlx::Executor as _;
        let lender = &$lender;
        (&*lender)
            .execute("CREATE TABLE lend_t (n BIGINT NOT NULL)")
            .await
            .unwrap();
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM lend_t")
                .fetch_one(lender)
                .await
                .unwrap()
        };

        // The one connection on loan: the next caller waits, and not for ever.
        let held = lender.get().await.unwrap();
        let refused = lender.get().await.err().expect("no connection free");
        assert!(matches!(refused, sqlx::Error::PoolTimedOut), "{refused}");
        assert!(StoreError::from(refused).is_unavailable());
        drop(held);

        // A transaction dropped without commit (a request that failed or was cancelled
        // half-way): undone, and the connection takes a new transaction.
        {
            let mut tx = lender.begin().await.unwrap();
            (&mut *tx)
                .execute("INSERT INTO lend_t (n) VALUES (1)")
                .await
                .unwrap();
        }
        assert_eq!(count().await, 0);
        let mut tx = lender.begin().await.unwrap();
        (&mut *tx)
            .execute("INSERT INTO lend_t (n) VALUES (2)")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count().await, 1);
        let mut tx = lender.begin().await.unwrap();
        (&mut *tx)
            .execute("INSERT INTO lend_t (n) VALUES (3)")
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(count().await, 1);

        // A statement cancelled while the database works on it: the next statement on that
        // connection gets its own answer.
        let cancelled = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            sqlx::query_scalar::<_, i64>($slow).fetch_one(lender),
        )
        .await;
        assert!(cancelled.is_err(), "the slow statement was cancelled");
        let seven: i64 = sqlx::query_scalar("SELECT CAST(7 AS BIGINT)")
            .fetch_one(lender)
            .await
            .unwrap();
        assert_eq!(seven, 7);
        assert_eq!(count().await, 1);

        // The database's refusal of a statement leaves the connection usable.
        let refused = (&*lender)
            .execute("INSERT INTO lend_t (n) VALUES (NULL)")
            .await
            .expect_err("NOT NULL");
        assert!(!StoreError::from(refused).is_unavailable());
        assert_eq!(count().await, 1);
    }};
}
use lend_checks;
