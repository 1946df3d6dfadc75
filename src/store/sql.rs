//! The SQL both databases share. The statements are portable (`$n` placeholders work in SQLite
//! and PostgreSQL alike), so one macro expands the same method bodies for each pool type and the
//! two implementations cannot drift apart. What differs (connecting, tuning, migrations) lives in
//! sqlite.rs and postgres.rs.

pub(crate) const ORG_COLS: &str = "id, kind, name, uscc, created_at";
pub(crate) const USER_COLS: &str = "id, username, display_name, role, duties, organisation_id, password_hash, demo, disabled, created_at";
pub(crate) const REFRESH_COLS: &str =
    "id, family_id, user_id, token_hash, created_at, expires_at, used_at, revoked_at";
pub(crate) const AUDIT_COLS: &str = "seq, prev_hash, hash, at, actor_id, actor_role, action, object_kind, object_id, object_hash, source, detail";
pub(crate) const AUDIT_PENDING_COLS: &str =
    "at, actor_id, actor_role, action, object_kind, object_id, object_hash, source, detail";

/// Appends the `i`-th row's placeholders of a multi-row VALUES list with `n` columns.
pub(crate) fn push_marks(sql: &mut String, i: usize, n: usize) {
    use std::fmt::Write;
    if i > 0 {
        sql.push_str(", ");
    }
    sql.push('(');
    for k in 1..=n {
        if k > 1 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "${}", i * n + k);
    }
    sql.push(')');
}
pub(crate) const PROJECT_COLS: &str = "id, developer_id, name, town, parcel_code, land_certificate_no, land_use, land_term_end, planning_permit_no, construction_permit_no, created_at";
pub(crate) const PERMIT_COLS: &str = "id, project_id, number, authority, issued_on, escrow_bank, escrow_account_name, escrow_account_no, status, created_at";
pub(crate) const BUILDING_COLS: &str = "id, project_id, number, name, floors_above, floors_below";
pub(crate) const CERT_COLS: &str = "serial, issuer, profile, subject, organisation_id, verification_id, not_before, not_after, der, revoked_at, revocation_reason, created_at";
pub(crate) const IDV_COLS: &str = "id, user_id, purpose, provider, provider_ref, subject_name, id_pseudonym, status, liveness_passed, similarity, threshold, evidence_digest, created_at, completed_at, event_cert_serial, identity_matched, failure";
pub(crate) const CONTRACT_COLS: &str = "id, contract_no, unit_id, developer_id, status, live, version, terms, drafter_id, confirmer_id, created_at, updated_at, document_sha256, filing_no, returned_reasons, cancellation, snapshot, filing_checks";
pub(crate) const SIGNATURE_COLS: &str = "id, contract_id, contract_version, field, kind, signer_user_id, certificate_serial, signed_at, document_before, document_after, evidence";
pub(crate) const REGISTRATION_COLS: &str = "id, contract_id, applicant_id, status, acceptance_no, acceptor_id, first_reviewer_id, second_reviewer_id, recorder_id, certificate_no, certificate_sha256, certificate_ofd_sha256, certificate_status, materials, opinions, created_at, updated_at, hold, hold_reasons, entry_status, lapses_on";
pub(crate) const CODE_COLS: &str = "id, user_id, verification_id, purpose, document_sha256, code_hash, attempts, created_at, expires_at, used_at";
pub(crate) const OUTBOX_COLS: &str = "seq, event_id, object_kind, object_id, status, occurred_at, attempts, next_attempt_at, lease_until, delivered_at, dead_at, last_error";
pub(crate) const UNIT_COLS: &str = "id, project_id, building_id, permit_id, room_no, floor, unit_number, use_type, gross_area, internal_area, shared_area, storey_height_mm, filed_price_fen, status, seized, mortgaged, objection, manual_hold, version, updated_at";

/// Expands `impl Store` for a store struct with a `pool` field and a `MIGRATOR` static.
macro_rules! impl_store {
    ($store:ty, $backend:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                $backend
            }

            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                MIGRATOR.run(&self.pool).await?;
                Ok(())
            }

            async fn ready(&self) -> $crate::store::StoreResult<$crate::store::MigrationStatus> {
                use sqlx::Row;
                let known = MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()).count();
                let has_table: i64 = sqlx::query(HAS_MIGRATIONS_TABLE)
                    .fetch_one(&self.lend)
                    .await?
                    .try_get(0)?;
                let applied = if has_table > 0 {
                    let n: i64 = sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&self.lend)
                        .await?
                        .try_get(0)?;
                    n as usize
                } else {
                    0
                };
                Ok($crate::store::MigrationStatus { known, applied })
            }

            async fn insert_organisation(
                &self,
                o: &$crate::store::Organisation,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO organisations (id, kind, name, uscc, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&o.id)
                .bind(&o.kind)
                .bind(&o.name)
                .bind(&o.uscc)
                .bind(o.created_at)
                .execute(&self.lend)
                .await?;
                Ok(())
            }

            async fn organisation(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Organisation>> {
                let sql = format!("SELECT {} FROM organisations WHERE id = $1", $crate::store::sql::ORG_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }

            async fn organisation_by_uscc(
                &self,
                uscc: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Organisation>> {
                let sql = format!("SELECT {} FROM organisations WHERE uscc = $1", $crate::store::sql::ORG_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(uscc).fetch_optional(&self.lend).await?)
            }

            async fn insert_user(&self, u: &$crate::store::User) -> $crate::store::StoreResult<()> {
                let sql = format!(
                    "INSERT INTO users ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    $crate::store::sql::USER_COLS
                );
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(&u.id)
                    .bind(&u.username)
                    .bind(&u.display_name)
                    .bind(&u.role)
                    .bind(&u.duties)
                    .bind(&u.organisation_id)
                    .bind(&u.password_hash)
                    .bind(u.demo)
                    .bind(u.disabled)
                    .bind(u.created_at)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }

            async fn user(&self, id: &str) -> $crate::store::StoreResult<Option<$crate::store::User>> {
                let sql = format!("SELECT {} FROM users WHERE id = $1", $crate::store::sql::USER_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }

            async fn user_by_username(
                &self,
                username: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::User>> {
                let sql = format!("SELECT {} FROM users WHERE username = $1", $crate::store::sql::USER_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(username).fetch_optional(&self.lend).await?)
            }

            async fn users(&self) -> $crate::store::StoreResult<Vec<$crate::store::User>> {
                let sql = format!("SELECT {} FROM users ORDER BY username", $crate::store::sql::USER_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(&self.lend).await?)
            }

            async fn count_users(&self) -> $crate::store::StoreResult<i64> {
                use sqlx::Row;
                Ok(sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&self.lend).await?.try_get(0)?)
            }

            async fn count_active_demo_users(&self) -> $crate::store::StoreResult<i64> {
                use sqlx::Row;
                Ok(sqlx::query("SELECT COUNT(*) FROM users WHERE demo AND NOT disabled")
                    .fetch_one(&self.lend)
                    .await?
                    .try_get(0)?)
            }

            async fn insert_refresh_token(
                &self,
                t: &$crate::store::NewRefreshToken,
            ) -> $crate::store::StoreResult<()> {
                insert_refresh(&self.lend, t).await
            }

            async fn rotate_refresh_token(
                &self,
                token_hash: &str,
                next: &$crate::store::NewRefreshToken,
                now: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<$crate::store::RefreshOutcome> {
                use $crate::store::RefreshOutcome;
                let mut tx = self.lend.begin().await?;
                // The conditional UPDATE is the compare-and-set: of two concurrent uses of one
                // token exactly one sees used_at NULL and wins.
                let claimed = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .bind(token_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let sql = format!("SELECT {} FROM refresh_tokens WHERE token_hash = $1", $crate::store::sql::REFRESH_COLS);
                let row: Option<$crate::store::RefreshToken> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(token_hash).fetch_optional(&mut *tx).await?;
                let Some(row) = row else {
                    return Ok(RefreshOutcome::Unknown);
                };
                if claimed == 1 {
                    let mut next = next.clone();
                    next.family_id = row.family_id.clone();
                    next.user_id = row.user_id.clone();
                    insert_refresh(&mut *tx, &next).await?;
                    tx.commit().await?;
                    return Ok(RefreshOutcome::Rotated { user_id: row.user_id });
                }
                let outcome = if row.revoked_at.is_some() {
                    RefreshOutcome::Revoked
                } else if row.used_at.is_some() {
                    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                        .bind(now)
                        .bind(&row.family_id)
                        .execute(&mut *tx)
                        .await?;
                    RefreshOutcome::Reused
                } else {
                    RefreshOutcome::Expired
                };
                tx.commit().await?;
                Ok(outcome)
            }

            async fn revoke_refresh_family(
                &self,
                token_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<Option<String>> {
                let mut tx = self.lend.begin().await?;
                let sql = format!("SELECT {} FROM refresh_tokens WHERE token_hash = $1", $crate::store::sql::REFRESH_COLS);
                let row: Option<$crate::store::RefreshToken> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(token_hash).fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(&row.family_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(row.user_id))
            }

            async fn append_audit(
                &self,
                e: &$crate::store::NewAuditEvent,
                sealer: $crate::store::AuditSealer,
            ) -> $crate::store::StoreResult<()> {
                if let Some(r) = self.audit.append(e, sealer).await {
                    return r;
                }
                Self::insert_audit_pending(&self.lend, vec![e.clone()]).await
            }

            async fn chain_audit(
                &self,
                sealer: $crate::store::AuditSealer,
            ) -> $crate::store::StoreResult<()> {
                // Most reads find nothing pending: no lock then.
                let pending: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_pending)")
                        .fetch_one(&self.lend)
                        .await?;
                if !pending {
                    return Ok(());
                }
                while Self::chain_audit_pass(&self.lend, sealer, true).await?
                    == $crate::store::ChainPass::More
                {}
                Ok(())
            }

            async fn audit_pending(&self) -> $crate::store::StoreResult<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_pending")
                    .fetch_one(&self.lend)
                    .await?)
            }

            async fn audit_events(
                &self,
                after_seq: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AuditEvent>> {
                let sql = format!(
                    "SELECT {} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    $crate::store::sql::AUDIT_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(after_seq).bind(limit).fetch_all(&self.lend).await?)
            }

            async fn audit_events_of(
                &self,
                object_ids: &[String],
            ) -> $crate::store::StoreResult<Vec<$crate::store::AuditEvent>> {
                if object_ids.is_empty() {
                    return Ok(vec![]);
                }
                let marks: Vec<String> = (1..=object_ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT {} FROM audit_events WHERE object_id IN ({}) ORDER BY seq LIMIT 2000",
                    $crate::store::sql::AUDIT_COLS,
                    marks.join(", ")
                );
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
                for id in object_ids {
                    q = q.bind(id);
                }
                Ok(q.fetch_all(&self.lend).await?)
            }

            async fn insert_certificate(
                &self,
                c: &$crate::store::CertificateRecord,
            ) -> $crate::store::StoreResult<()> {
                insert_cert(&self.lend, c).await
            }

            async fn certificate(
                &self,
                serial: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::CertificateRecord>> {
                let sql = format!("SELECT {} FROM certificates WHERE serial = $1", $crate::store::sql::CERT_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(serial).fetch_optional(&self.lend).await?)
            }

            async fn certificates(
                &self,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::CertificateRecord>> {
                let sql = format!(
                    "SELECT {} FROM certificates ORDER BY created_at DESC, serial LIMIT $1",
                    $crate::store::sql::CERT_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(limit).fetch_all(&self.lend).await?)
            }

            async fn revoke_certificate(
                &self,
                serial: &str,
                at: time::OffsetDateTime,
                reason: &str,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(reason)
                .bind(serial)
                .execute(&self.lend)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn revoked_certificates(
                &self,
                issuer: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::CertificateRecord>> {
                let sql = format!(
                    "SELECT {} FROM certificates WHERE issuer = $1 AND revoked_at IS NOT NULL ORDER BY serial",
                    $crate::store::sql::CERT_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(issuer).fetch_all(&self.lend).await?)
            }

            async fn insert_identity_verification(
                &self,
                v: &$crate::store::IdentityVerification,
            ) -> $crate::store::StoreResult<()> {
                let sql = format!(
                    "INSERT INTO identity_verifications ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                    $crate::store::sql::IDV_COLS
                );
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(&v.id)
                    .bind(&v.user_id)
                    .bind(&v.purpose)
                    .bind(&v.provider)
                    .bind(&v.provider_ref)
                    .bind(&v.subject_name)
                    .bind(&v.id_pseudonym)
                    .bind(v.status)
                    .bind(v.liveness_passed)
                    .bind(v.similarity)
                    .bind(v.threshold)
                    .bind(&v.evidence_digest)
                    .bind(v.created_at)
                    .bind(v.completed_at)
                    .bind(&v.event_cert_serial)
                    .bind(v.identity_matched)
                    .bind(&v.failure)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }

            async fn identity_verification(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::IdentityVerification>> {
                let sql = format!("SELECT {} FROM identity_verifications WHERE id = $1", $crate::store::sql::IDV_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }

            async fn identity_verification_by_ref(
                &self,
                provider: &str,
                provider_ref: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::IdentityVerification>> {
                let sql = format!(
                    "SELECT {} FROM identity_verifications WHERE provider = $1 AND provider_ref = $2",
                    $crate::store::sql::IDV_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(provider)
                    .bind(provider_ref)
                    .fetch_optional(&self.lend)
                    .await?)
            }

            async fn identity_verifications_of(
                &self,
                user_id: &str,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::IdentityVerification>> {
                let sql = format!(
                    "SELECT {} FROM identity_verifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                    $crate::store::sql::IDV_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(user_id)
                    .bind(limit)
                    .fetch_all(&self.lend)
                    .await?)
            }

            async fn latest_passed_verification(
                &self,
                user_id: &str,
                purpose: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::IdentityVerification>> {
                let sql = format!(
                    "SELECT {} FROM identity_verifications WHERE user_id = $1 AND purpose = $2 AND status = $3 \
                     ORDER BY completed_at DESC, id DESC LIMIT 1",
                    $crate::store::sql::IDV_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(user_id)
                    .bind(purpose)
                    .bind($crate::domain::identity::VerificationStatus::Passed.as_str())
                    .fetch_optional(&self.lend)
                    .await?)
            }

            async fn complete_identity_verification(
                &self,
                v: &$crate::store::IdentityVerification,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "UPDATE identity_verifications SET status = $1, liveness_passed = $2, similarity = $3, evidence_digest = $4, completed_at = $5, identity_matched = $6, failure = $7 WHERE id = $8 AND status = $9",
                )
                .bind(v.status)
                .bind(v.liveness_passed)
                .bind(v.similarity)
                .bind(&v.evidence_digest)
                .bind(v.completed_at)
                .bind(v.identity_matched)
                .bind(&v.failure)
                .bind(&v.id)
                .bind($crate::domain::identity::VerificationStatus::Pending)
                .execute(&self.lend)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn set_provider_ref(
                &self,
                id: &str,
                provider_ref: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE identity_verifications SET provider_ref = $1 WHERE id = $2")
                    .bind(provider_ref)
                    .bind(id)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }

            async fn remember_nonce(
                &self,
                provider: &str,
                nonce: &str,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "INSERT INTO identity_nonces (provider, nonce, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(provider)
                .bind(nonce)
                .bind(at)
                .execute(&self.lend)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn unit(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Unit>> {
                let sql = format!("SELECT {} FROM units WHERE id = $1", $crate::store::sql::UNIT_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }




            async fn put_material(
                &self,
                sha256: &str,
                media_type: &str,
                size: usize,
                content: &[u8],
                base: Option<&str>,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO materials (sha256, media_type, size, content, base_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(sha256)
                .bind(media_type)
                .bind(size as i64)
                .bind(content)
                .bind(base)
                .bind(at)
                .execute(&self.lend)
                .await?;
                Ok(())
            }

            async fn material(
                &self,
                sha256: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::StoredMaterial>> {
                // The row and its bases in one statement (a revision names the one before it).
                let sql = format!(
                    "WITH RECURSIVE chain (sha256, base_sha256, content, depth) AS ( \
                       SELECT sha256, base_sha256, content, 0 FROM materials WHERE sha256 = $1 \
                       UNION ALL \
                       SELECT m.sha256, m.base_sha256, m.content, c.depth + 1 \
                       FROM materials m JOIN chain c ON m.sha256 = c.base_sha256 \
                       WHERE c.depth < {} ) \
                     SELECT sha256, base_sha256, content FROM chain ORDER BY depth",
                    $crate::store::MATERIAL_CHAIN - 1
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(sha256)
                    .fetch_all(&self.lend)
                    .await?)
            }








            async fn purge_nonces(&self, before: time::OffsetDateTime) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM identity_nonces WHERE seen_at < $1")
                    .bind(before)
                    .execute(&self.lend)
                    .await?
                    .rows_affected())
            }

            async fn claim_idempotency_key(
                &self,
                scope: &str,
                key: &str,
                request_hash: &str,
                at: time::OffsetDateTime,
                lease_until: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<$crate::store::IdempotencyClaim> {
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, lease_until) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(scope)
                .bind(key)
                .bind(request_hash)
                .bind(at)
                .bind(lease_until)
                .execute(&self.lend)
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok($crate::store::IdempotencyClaim::New);
                }
                let row: Option<(String, Option<i32>, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
                    "SELECT request_hash, status, content_type, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
                )
                .bind(scope)
                .bind(key)
                .fetch_optional(&self.lend)
                .await?;
                Ok(match row {
                    None => $crate::store::IdempotencyClaim::InFlight,
                    Some((hash, _, _, _)) if hash != request_hash => $crate::store::IdempotencyClaim::Mismatch,
                    Some((_, Some(status), content_type, body)) => $crate::store::IdempotencyClaim::Replay {
                        status,
                        content_type,
                        body: body.unwrap_or_default(),
                    },
                    Some(_) => {
                        // Unanswered: take it over if its lease ran out (one taker wins).
                        let taken = sqlx::query(
                            "UPDATE idempotency_keys SET lease_until = $1 WHERE scope = $2 AND key = $3 \
                             AND status IS NULL AND (lease_until IS NULL OR lease_until < $4)",
                        )
                        .bind(lease_until)
                        .bind(scope)
                        .bind(key)
                        .bind(at)
                        .execute(&self.lend)
                        .await?
                        .rows_affected();
                        if taken == 1 {
                            $crate::store::IdempotencyClaim::Abandoned
                        } else {
                            $crate::store::IdempotencyClaim::InFlight
                        }
                    }
                })
            }

            async fn idempotency_effects(
                &self,
                scope: &str,
                key: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::IdempotencyEffect>> {
                let rows: Vec<(String, String, bool)> = sqlx::query_as(
                    "SELECT object_kind, object_id, created FROM idempotency_effects WHERE scope = $1 AND key = $2 ORDER BY at",
                )
                .bind(scope)
                .bind(key)
                .fetch_all(&self.lend)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(object_kind, object_id, created)| $crate::store::IdempotencyEffect {
                        object_kind,
                        object_id,
                        created,
                    })
                    .collect())
            }

            async fn purge_idempotency(&self, before: time::OffsetDateTime) -> $crate::store::StoreResult<u64> {
                let keys = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1 AND (status IS NOT NULL OR lease_until < $1)")
                    .bind(before)
                    .execute(&self.lend)
                    .await?
                    .rows_affected();
                let effects = sqlx::query("DELETE FROM idempotency_effects WHERE at < $1")
                    .bind(before)
                    .execute(&self.lend)
                    .await?
                    .rows_affected();
                Ok(keys + effects)
            }

            async fn record_login_attempt(
                &self,
                kind: &str,
                key: &str,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("INSERT INTO login_attempts (kind, key, at) VALUES ($1, $2, $3)")
                    .bind(kind)
                    .bind(key)
                    .bind(at)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }

            async fn login_attempts(
                &self,
                kind: &str,
                key: &str,
                since: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<(i64, Option<time::OffsetDateTime>)> {
                let (n, oldest): (i64, Option<time::OffsetDateTime>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(at) FROM login_attempts WHERE kind = $1 AND key = $2 AND at >= $3",
                )
                .bind(kind)
                .bind(key)
                .bind(since)
                .fetch_one(&self.lend)
                .await?;
                Ok((n, oldest))
            }

            async fn clear_login_attempts(&self, kind: &str, key: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM login_attempts WHERE kind = $1 AND key = $2")
                    .bind(kind)
                    .bind(key)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }

            async fn purge_login_attempts(&self, before: time::OffsetDateTime) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM login_attempts WHERE at < $1")
                    .bind(before)
                    .execute(&self.lend)
                    .await?
                    .rows_affected())
            }

            async fn pki_object(&self, name: &str) -> $crate::store::StoreResult<Option<$crate::store::PkiObject>> {
                Ok(sqlx::query_as(
                    "SELECT name, cert_der, key_kind, key_label, key_pem, created_at FROM pki_objects WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.lend)
                .await?)
            }

            async fn insert_pki_object(&self, o: &$crate::store::PkiObject) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "INSERT INTO pki_objects (name, cert_der, key_kind, key_label, key_pem, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&o.name)
                .bind(&o.cert_der)
                .bind(&o.key_kind)
                .bind(&o.key_label)
                .bind(&o.key_pem)
                .bind(o.created_at)
                .execute(&self.lend)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn insert_pki_objects(&self, objects: &[$crate::store::PkiObject]) -> $crate::store::StoreResult<bool> {
                let mut tx = self.lend.begin().await?;
                for o in objects {
                    let n = sqlx::query(
                        "INSERT INTO pki_objects (name, cert_der, key_kind, key_label, key_pem, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(&o.name)
                    .bind(&o.cert_der)
                    .bind(&o.key_kind)
                    .bind(&o.key_label)
                    .bind(&o.key_pem)
                    .bind(o.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_es_seal(&self, e: &$crate::store::EsSeal) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "INSERT INTO es_seals (es_id, name, seal_type, holder, organisation_id, seal_der, valid_from, valid_to, created_at, revoked_at, revocation_reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL) ON CONFLICT DO NOTHING",
                )
                .bind(&e.es_id)
                .bind(&e.name)
                .bind(e.seal_type)
                .bind(&e.holder)
                .bind(&e.organisation_id)
                .bind(&e.seal_der)
                .bind(e.valid_from)
                .bind(e.valid_to)
                .bind(e.created_at)
                .execute(&self.lend)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn live_es_seal(&self, holder: &str) -> $crate::store::StoreResult<Option<$crate::store::EsSeal>> {
                Ok(sqlx::query_as(
                    "SELECT es_id, name, seal_type, holder, organisation_id, seal_der, valid_from, valid_to, created_at, revoked_at, revocation_reason FROM es_seals WHERE holder = $1 AND revoked_at IS NULL",
                )
                .bind(holder)
                .fetch_optional(&self.lend)
                .await?)
            }

            async fn es_seal(&self, es_id: &str) -> $crate::store::StoreResult<Option<$crate::store::EsSeal>> {
                Ok(sqlx::query_as(
                    "SELECT es_id, name, seal_type, holder, organisation_id, seal_der, valid_from, valid_to, created_at, revoked_at, revocation_reason FROM es_seals WHERE es_id = $1",
                )
                .bind(es_id)
                .fetch_optional(&self.lend)
                .await?)
            }

            async fn es_seals(&self, limit: i64) -> $crate::store::StoreResult<Vec<$crate::store::EsSeal>> {
                Ok(sqlx::query_as(
                    "SELECT es_id, name, seal_type, holder, organisation_id, seal_der, valid_from, valid_to, created_at, revoked_at, revocation_reason FROM es_seals ORDER BY created_at DESC, es_id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.lend)
                .await?)
            }

            async fn revoke_es_seal(&self, es_id: &str, at: time::OffsetDateTime, reason: &str) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE es_seals SET revoked_at = $1, revocation_reason = $2 WHERE es_id = $3 AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(reason)
                .bind(es_id)
                .execute(&self.lend)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn next_crl_number(&self, ca: &str, floor: i64) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "INSERT INTO crl_numbers (ca, number) VALUES ($1, $2) \
                     ON CONFLICT (ca) DO UPDATE SET number = CASE WHEN crl_numbers.number + 1 > $2 THEN crl_numbers.number + 1 ELSE $2 END \
                     RETURNING number",
                )
                .bind(ca)
                .bind(floor)
                .fetch_one(&self.lend)
                .await?;
                Ok(n)
            }

            async fn complete_idempotency_key(
                &self,
                scope: &str,
                key: &str,
                status: i32,
                content_type: Option<&str>,
                body: &[u8],
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE idempotency_keys SET status = $1, content_type = $2, response = $3 WHERE scope = $4 AND key = $5",
                )
                .bind(status)
                .bind(content_type)
                .bind(body)
                .bind(scope)
                .bind(key)
                .execute(&self.lend)
                .await?;
                Ok(())
            }

            async fn release_idempotency_key(&self, scope: &str, key: &str) -> $crate::store::StoreResult<()> {
                // The claim's lease ends now rather than the row going: a retry takes it over as
                // abandoned and first looks for what the attempt committed (a change can commit
                // and the request still fail after it, for instance when the database is lost
                // before the answer), so a committed change is answered, not made again.
                sqlx::query("UPDATE idempotency_keys SET lease_until = $3 WHERE scope = $1 AND key = $2 AND status IS NULL")
                    .bind(scope)
                    .bind(key)
                    .bind(time::OffsetDateTime::UNIX_EPOCH)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }











            async fn put_owned_material(
                &self,
                sha256: &str,
                media_type: &str,
                content: &[u8],
                user_id: &str,
                kind: &str,
                name: &str,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.lend.begin().await?;
                sqlx::query(
                    "INSERT INTO materials (sha256, media_type, size, content, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(sha256)
                .bind(media_type)
                .bind(content.len() as i64)
                .bind(content)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO material_owners (sha256, user_id, kind, name, uploaded_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (sha256, user_id) DO UPDATE SET kind = excluded.kind, name = excluded.name",
                )
                .bind(sha256)
                .bind(user_id)
                .bind(kind)
                .bind(name)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn materials_of(
                &self,
                user_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OwnedMaterial>> {
                Ok(sqlx::query_as(
                    "SELECT o.sha256, o.user_id, o.kind, o.name, o.uploaded_at, m.media_type, m.size \
                     FROM material_owners o JOIN materials m ON m.sha256 = o.sha256 \
                     WHERE o.user_id = $1 ORDER BY o.uploaded_at DESC LIMIT 500",
                )
                .bind(user_id)
                .fetch_all(&self.lend)
                .await?)
            }







            async fn set_user_identity(
                &self,
                user_id: &str,
                real_name: &str,
                id_number_enc: &str,
                id_number_hash: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE users SET real_name = $1, id_number_enc = $2, id_number_hash = $3 WHERE id = $4",
                )
                .bind(real_name)
                .bind(id_number_enc)
                .bind(id_number_hash)
                .bind(user_id)
                .execute(&self.lend)
                .await?;
                Ok(())
            }

            async fn user_identity(
                &self,
                user_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::UserIdentity>> {
                Ok(sqlx::query_as(
                    "SELECT real_name, id_number_enc, id_number_hash FROM users WHERE id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.lend)
                .await?)
            }

            async fn insert_signing_code(
                &self,
                c: &$crate::store::SigningCode,
            ) -> $crate::store::StoreResult<()> {
                let sql = format!(
                    "INSERT INTO signing_codes ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    $crate::store::sql::CODE_COLS
                );
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(&c.id)
                    .bind(&c.user_id)
                    .bind(&c.verification_id)
                    .bind(&c.purpose)
                    .bind(&c.document_sha256)
                    .bind(&c.code_hash)
                    .bind(c.attempts)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .bind(c.used_at)
                    .execute(&self.lend)
                    .await?;
                Ok(())
            }

            async fn signing_code(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::SigningCode>> {
                let sql = format!("SELECT {} FROM signing_codes WHERE id = $1", $crate::store::sql::CODE_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }

            async fn signing_codes_since(
                &self,
                user_id: &str,
                since: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM signing_codes WHERE user_id = $1 AND created_at >= $2",
                )
                .bind(user_id)
                .bind(since)
                .fetch_one(&self.lend)
                .await?;
                Ok(n)
            }

            async fn count_code_attempt(&self, id: &str) -> $crate::store::StoreResult<i32> {
                let (n,): (i32,) = sqlx::query_as(
                    "UPDATE signing_codes SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
                )
                .bind(id)
                .fetch_one(&self.lend)
                .await?;
                Ok(n)
            }

            async fn use_signing_code(
                &self,
                id: &str,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "UPDATE signing_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
                )
                .bind(at)
                .bind(id)
                .execute(&self.lend)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn record_event_certificate(
                &self,
                verification_id: &str,
                c: &$crate::store::CertificateRecord,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.lend.begin().await?;
                let claimed = sqlx::query(
                    "UPDATE identity_verifications SET event_cert_serial = $1 WHERE id = $2 AND event_cert_serial IS NULL",
                )
                .bind(&c.serial)
                .bind(verification_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                insert_cert(&mut *tx, c).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_development(
                &self,
                d: &$crate::store::Development,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.lend.begin().await?;
                insert_project_row(&mut *tx, &d.project).await?;
                for m in &d.permits {
                    insert_permit_row(&mut *tx, m).await?;
                }
                for b in &d.buildings {
                    insert_building_row(&mut *tx, b).await?;
                }
                for u in &d.units {
                    insert_unit(&mut *tx, u).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_outbox(
                &self,
                now: time::OffsetDateTime,
                lease_until: time::OffsetDateTime,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OutboxEvent>> {
                // The outer conditions repeat the inner ones: PostgreSQL re-checks them on the
                // row a concurrent claimer just updated, so that claimer's lease excludes it.
                let sql = format!(
                    "UPDATE outbox SET lease_until = $1, attempts = attempts + 1 \
                     WHERE seq IN (SELECT seq FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL \
                                   AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2) \
                                   ORDER BY seq LIMIT $3) \
                     AND delivered_at IS NULL AND dead_at IS NULL AND (lease_until IS NULL OR lease_until < $2) \
                     RETURNING {}",
                    $crate::store::sql::OUTBOX_COLS
                );
                let mut rows: Vec<$crate::store::OutboxEvent> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.lend)
                    .await?;
                rows.sort_by_key(|e| e.seq);
                Ok(rows)
            }

            async fn finish_outbox(
                &self,
                seq: i64,
                lease_until: time::OffsetDateTime,
                outcome: &$crate::store::OutboxOutcome,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<bool> {
                let q = match outcome {
                    $crate::store::OutboxOutcome::Delivered => sqlx::query(
                        "UPDATE outbox SET delivered_at = $1, lease_until = NULL, last_error = NULL WHERE seq = $2 AND lease_until = $3",
                    )
                    .bind(at)
                    .bind(seq)
                    .bind(lease_until),
                    $crate::store::OutboxOutcome::Failed { error, retry_at: Some(next) } => sqlx::query(
                        "UPDATE outbox SET next_attempt_at = $1, lease_until = NULL, last_error = $2 WHERE seq = $3 AND lease_until = $4",
                    )
                    .bind(*next)
                    .bind(error)
                    .bind(seq)
                    .bind(lease_until),
                    $crate::store::OutboxOutcome::Failed { error, retry_at: None } => sqlx::query(
                        "UPDATE outbox SET dead_at = $1, lease_until = NULL, last_error = $2 WHERE seq = $3 AND lease_until = $4",
                    )
                    .bind(at)
                    .bind(error)
                    .bind(seq)
                    .bind(lease_until),
                };
                Ok(q.execute(&self.lend).await?.rows_affected() == 1)
            }

            async fn requeue_outbox(&self, event_id: &str, at: time::OffsetDateTime) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = $1, lease_until = NULL WHERE event_id = $2 AND dead_at IS NOT NULL",
                )
                .bind(at)
                .bind(event_id)
                .execute(&self.lend)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn purge_outbox(&self, before: time::OffsetDateTime) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM outbox WHERE delivered_at < $1")
                    .bind(before)
                    .execute(&self.lend)
                    .await?
                    .rows_affected())
            }

            async fn outbox_events(
                &self,
                after_seq: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OutboxEvent>> {
                let sql = format!(
                    "SELECT {} FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
                    $crate::store::sql::OUTBOX_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(&self.lend)
                    .await?)
            }

            async fn users_by_id_hash(
                &self,
                id_number_hash: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::User>> {
                let sql = format!(
                    "SELECT {} FROM users WHERE id_number_hash = $1 AND NOT disabled ORDER BY created_at",
                    $crate::store::sql::USER_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(id_number_hash)
                    .fetch_all(&self.lend)
                    .await?)
            }

            async fn insert_project(&self, p: &$crate::store::Project) -> $crate::store::StoreResult<()> {
                insert_project_row(&self.lend, p).await
            }

            async fn insert_building(
                &self,
                b: &$crate::store::Building,
                units: &[$crate::store::Unit],
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.lend.begin().await?;
                insert_building_row(&mut *tx, b).await?;
                for u in units {
                    insert_unit(&mut *tx, u).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn insert_permit(
                &self,
                m: &$crate::store::Permit,
                cover_buildings: &[String],
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.lend.begin().await?;
                insert_permit_row(&mut *tx, m).await?;
                let mut released = 0;
                for b in cover_buildings {
                    released += sqlx::query(
                        "UPDATE units SET permit_id = $1, status = $5, version = version + 1, updated_at = $2 WHERE building_id = $3 AND project_id = $4 AND status = $6 AND permit_id IS NULL",
                    )
                    .bind(&m.id)
                    .bind(at)
                    .bind(b)
                    .bind(&m.project_id)
                    .bind($crate::domain::lifecycle::UnitStatus::Available)
                    .bind($crate::domain::lifecycle::UnitStatus::Unreleased)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(released)
            }

            async fn permit(&self, id: &str) -> $crate::store::StoreResult<Option<$crate::store::Permit>> {
                let sql = format!("SELECT {} FROM presale_permits WHERE id = $1", $crate::store::sql::PERMIT_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }

            async fn set_permit_status(&self, id: &str, status: $crate::domain::lifecycle::PermitStatus) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query("UPDATE presale_permits SET status = $1 WHERE id = $2 AND status <> $1")
                    .bind(status)
                    .bind(id)
                    .execute(&self.lend)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn set_unit_flag(
                &self,
                id: &str,
                flag: $crate::store::UnitFlag,
                value: bool,
                at: time::OffsetDateTime,
            ) -> $crate::store::StoreResult<bool> {
                let col = flag.column();
                let sql = format!(
                    "UPDATE units SET {col} = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND {col} <> $1"
                );
                Ok(sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(value)
                    .bind(at)
                    .bind(id)
                    .execute(&self.lend)
                    .await?
                    .rows_affected()
                    == 1)
            }

            async fn projects(&self) -> $crate::store::StoreResult<Vec<$crate::store::Project>> {
                let sql = format!("SELECT {} FROM projects ORDER BY name, id", $crate::store::sql::PROJECT_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(&self.lend).await?)
            }

            async fn project(&self, id: &str) -> $crate::store::StoreResult<Option<$crate::store::Project>> {
                let sql = format!("SELECT {} FROM projects WHERE id = $1", $crate::store::sql::PROJECT_COLS);
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&self.lend).await?)
            }

            async fn permits(&self, project_id: &str) -> $crate::store::StoreResult<Vec<$crate::store::Permit>> {
                let sql = format!(
                    "SELECT {} FROM presale_permits WHERE project_id = $1 ORDER BY number",
                    $crate::store::sql::PERMIT_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(project_id).fetch_all(&self.lend).await?)
            }

            async fn buildings(&self, project_id: &str) -> $crate::store::StoreResult<Vec<$crate::store::Building>> {
                let sql = format!(
                    "SELECT {} FROM buildings WHERE project_id = $1 ORDER BY number",
                    $crate::store::sql::BUILDING_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(project_id).fetch_all(&self.lend).await?)
            }

            async fn units(&self, project_id: &str) -> $crate::store::StoreResult<Vec<$crate::store::Unit>> {
                let sql = format!(
                    "SELECT {} FROM units WHERE project_id = $1 ORDER BY building_id, floor, room_no",
                    $crate::store::sql::UNIT_COLS
                );
                Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(project_id).fetch_all(&self.lend).await?)
            }
        }

        async fn insert_cert<'c, E>(
            conn: E,
            c: &$crate::store::CertificateRecord,
        ) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'c, Database = Db>,
        {
            let sql = format!(
                "INSERT INTO certificates ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                $crate::store::sql::CERT_COLS
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&c.serial)
                .bind(&c.issuer)
                .bind(&c.profile)
                .bind(&c.subject)
                .bind(&c.organisation_id)
                .bind(&c.verification_id)
                .bind(c.not_before)
                .bind(c.not_after)
                .bind(&c.der)
                .bind(c.revoked_at)
                .bind(&c.revocation_reason)
                .bind(c.created_at)
                .execute(conn)
                .await?;
            Ok(())
        }


        async fn insert_project_row<'c, E>(
            conn: E,
            p: &$crate::store::Project,
        ) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'c, Database = Db>,
        {
            let sql = format!(
                "INSERT INTO projects ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                $crate::store::sql::PROJECT_COLS
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&p.id)
                .bind(&p.developer_id)
                .bind(&p.name)
                .bind(&p.town)
                .bind(&p.parcel_code)
                .bind(&p.land_certificate_no)
                .bind(&p.land_use)
                .bind(p.land_term_end)
                .bind(&p.planning_permit_no)
                .bind(&p.construction_permit_no)
                .bind(p.created_at)
                .execute(conn)
                .await?;
            Ok(())
        }

        async fn insert_building_row<'c, E>(
            conn: E,
            b: &$crate::store::Building,
        ) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'c, Database = Db>,
        {
            let sql = format!(
                "INSERT INTO buildings ({}) VALUES ($1, $2, $3, $4, $5, $6)",
                $crate::store::sql::BUILDING_COLS
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&b.id)
                .bind(&b.project_id)
                .bind(b.number)
                .bind(&b.name)
                .bind(b.floors_above)
                .bind(b.floors_below)
                .execute(conn)
                .await?;
            Ok(())
        }

        async fn insert_permit_row<'c, E>(
            conn: E,
            m: &$crate::store::Permit,
        ) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'c, Database = Db>,
        {
            let sql = format!(
                "INSERT INTO presale_permits ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                $crate::store::sql::PERMIT_COLS
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&m.id)
                .bind(&m.project_id)
                .bind(&m.number)
                .bind(&m.authority)
                .bind(m.issued_on)
                .bind(&m.escrow_bank)
                .bind(&m.escrow_account_name)
                .bind(&m.escrow_account_no)
                .bind(m.status)
                .bind(m.created_at)
                .execute(conn)
                .await?;
            Ok(())
        }

        async fn insert_unit<'c, E>(
            conn: E,
            u: &$crate::store::Unit,
        ) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'c, Database = Db>,
        {
            let sql = format!(
                "INSERT INTO units ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
                $crate::store::sql::UNIT_COLS
            );
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&u.id)
                .bind(&u.project_id)
                .bind(&u.building_id)
                .bind(&u.permit_id)
                .bind(&u.room_no)
                .bind(u.floor)
                .bind(&u.unit_number)
                .bind(&u.use_type)
                .bind(u.gross_area)
                .bind(u.internal_area)
                .bind(u.shared_area)
                .bind(u.storey_height_mm)
                .bind(u.filed_price_fen)
                .bind(u.status)
                .bind(u.seized)
                .bind(u.mortgaged)
                .bind(u.objection)
                .bind(u.manual_hold)
                .bind(u.version)
                .bind(u.updated_at)
                .execute(conn)
                .await?;
            Ok(())
        }

        async fn insert_refresh<'c, E>(
            conn: E,
            t: &$crate::store::NewRefreshToken,
        ) -> $crate::store::StoreResult<()>
        where
            E: sqlx::Executor<'c, Database = Db>,
        {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&t.id)
            .bind(&t.family_id)
            .bind(&t.user_id)
            .bind(&t.token_hash)
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(conn)
            .await?;
            Ok(())
        }
    };
}

pub(crate) use impl_store;

/// Expands the audit trail's two steps for a store struct (see store::AuditQueue): committing
/// entries as pending, and chaining pending entries in batches under the chain's head.
/// `$postgres` picks the head lock: PostgreSQL can skip a head another instance holds
/// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time and takes it by writing.
macro_rules! impl_audit_batch {
    ($store:ty, $postgres:expr) => {
        impl $store {
            /// Commits entries as pending, in one statement.
            pub(crate) async fn insert_audit_pending(
                pool: &$crate::store::lend::Lender<Db>,
                events: Vec<$crate::store::NewAuditEvent>,
            ) -> $crate::store::StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut sql = format!(
                    "INSERT INTO audit_pending ({}) VALUES ",
                    $crate::store::sql::AUDIT_PENDING_COLS
                );
                for i in 0..events.len() {
                    $crate::store::sql::push_marks(&mut sql, i, 9);
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for e in &events {
                    q = q
                        .bind(e.at)
                        .bind(&e.actor_id)
                        .bind(&e.actor_role)
                        .bind(&e.action)
                        .bind(&e.object_kind)
                        .bind(&e.object_id)
                        .bind(&e.object_hash)
                        .bind(&e.source)
                        .bind(&e.detail);
                }
                q.execute(pool).await?;
                Ok(())
            }

            /// One chaining pass: takes the head (or skips when `wait` is false and another
            /// instance holds it), chains up to a batch of pending entries in the order they
            /// were numbered, and commits.
            pub(crate) async fn chain_audit_pass(
                pool: &$crate::store::lend::Lender<Db>,
                sealer: $crate::store::AuditSealer,
                wait: bool,
            ) -> $crate::store::StoreResult<$crate::store::ChainPass> {
                use sqlx::Row;
                let mut tx = pool.begin().await?;
                let lock = if !$postgres {
                    "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash"
                } else if wait {
                    "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
                } else {
                    "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE SKIP LOCKED"
                };
                let Some(head) = sqlx::query(lock).fetch_optional(&mut *tx).await? else {
                    tx.rollback().await?;
                    return Ok($crate::store::ChainPass::Skipped);
                };
                let mut seq: i64 = head.try_get(0)?;
                let mut prev_hash: String = head.try_get(1)?;
                let sql = format!(
                    "SELECT id, {} FROM audit_pending ORDER BY id LIMIT {}",
                    $crate::store::sql::AUDIT_PENDING_COLS,
                    $crate::store::AUDIT_BATCH
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    tx.rollback().await?;
                    return Ok($crate::store::ChainPass::Done(0));
                }
                let mut ids = Vec::with_capacity(rows.len());
                let mut done = Vec::with_capacity(rows.len());
                for r in rows {
                    ids.push(r.try_get::<i64, _>(0)?);
                    let e = $crate::store::NewAuditEvent {
                        at: r.try_get(1)?,
                        actor_id: r.try_get(2)?,
                        actor_role: r.try_get(3)?,
                        action: r.try_get(4)?,
                        object_kind: r.try_get(5)?,
                        object_id: r.try_get(6)?,
                        object_hash: r.try_get(7)?,
                        source: r.try_get(8)?,
                        detail: r.try_get(9)?,
                    };
                    seq += 1;
                    let hash = sealer(seq, &prev_hash, &e);
                    done.push($crate::store::AuditEvent {
                        seq,
                        prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                        hash,
                        at: e.at,
                        actor_id: e.actor_id,
                        actor_role: e.actor_role,
                        action: e.action,
                        object_kind: e.object_kind,
                        object_id: e.object_id,
                        object_hash: e.object_hash,
                        source: e.source,
                        detail: e.detail,
                    });
                }
                let mut sql = format!(
                    "INSERT INTO audit_events ({}) VALUES ",
                    $crate::store::sql::AUDIT_COLS
                );
                for i in 0..done.len() {
                    $crate::store::sql::push_marks(&mut sql, i, 12);
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for e in &done {
                    q = q
                        .bind(e.seq)
                        .bind(&e.prev_hash)
                        .bind(&e.hash)
                        .bind(e.at)
                        .bind(&e.actor_id)
                        .bind(&e.actor_role)
                        .bind(&e.action)
                        .bind(&e.object_kind)
                        .bind(&e.object_id)
                        .bind(&e.object_hash)
                        .bind(&e.source)
                        .bind(&e.detail);
                }
                q.execute(&mut *tx).await?;
                // Exactly the rows read: an entry numbered earlier but committed after the
                // read is still pending and goes into the next pass.
                let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "DELETE FROM audit_pending WHERE id IN ({})",
                    marks.join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for id in &ids {
                    q = q.bind(id);
                }
                q.execute(&mut *tx).await?;
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(seq)
                    .bind(&prev_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(if done.len() == $crate::store::AUDIT_BATCH {
                    $crate::store::ChainPass::More
                } else {
                    $crate::store::ChainPass::Done(done.len())
                })
            }

            /// The writer and chainer tasks for this pool (see store::AuditQueue).
            fn audit_writer(pool: &$crate::store::lend::Lender<Db>) -> $crate::store::AuditQueue {
                let inserts = pool.clone();
                let chains = pool.clone();
                $crate::store::AuditQueue::start(
                    move |events| {
                        let pool = inserts.clone();
                        async move { Self::insert_audit_pending(&pool, events).await }
                    },
                    move |sealer| {
                        let pool = chains.clone();
                        async move { Self::chain_audit_pass(&pool, sealer, false).await }
                    },
                )
            }
        }
    };
}
pub(crate) use impl_audit_batch;
