//! People at the window in storage: page sessions (a look at a refresh token without using it),
//! buyers' mobile numbers and their one-time sign-in codes, and the record of a buyer reading
//! each chapter of a contract before signing it.

use super::{RefreshToken, StoreResult, User};
use async_trait::async_trait;
use time::OffsetDateTime;

/// A one-time code sent to a mobile number (only its keyed hash is kept).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PhoneChallenge {
    pub id: String,
    pub phone_hash: String,
    pub phone_enc: String,
    pub code_hash: String,
    pub attempts: i32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// A buyer opened chapter `chapter` of version `version` at `opened_at`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Reading {
    pub chapter: i32,
    pub opened_at: OffsetDateTime,
}

#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// The refresh token with this hash, used or not (a page session checks it is live).
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    async fn insert_phone_challenge(&self, c: &PhoneChallenge) -> StoreResult<()>;
    async fn phone_challenge(&self, id: &str) -> StoreResult<Option<PhoneChallenge>>;
    /// Codes sent to this number since `since` (the hourly limit).
    async fn phone_challenges_since(
        &self,
        phone_hash: &str,
        since: OffsetDateTime,
    ) -> StoreResult<i64>;
    /// Counts a wrong try; returns the new count.
    async fn count_phone_attempt(&self, id: &str) -> StoreResult<i32>;
    /// Spends the code; false when it was spent already (two tries at once: one wins).
    async fn use_phone_challenge(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool>;
    async fn user_by_phone_hash(&self, phone_hash: &str) -> StoreResult<Option<User>>;
    /// A new account with its mobile number, in one transaction; false when the number has an
    /// account already (two sign-ups at once: one account).
    async fn insert_user_with_phone(
        &self,
        user: &User,
        phone_enc: &str,
        phone_hash: &str,
    ) -> StoreResult<bool>;
    async fn user_phone(&self, user_id: &str) -> StoreResult<Option<String>>;
    /// Records that a buyer opened a chapter (the first opening counts).
    async fn record_reading(
        &self,
        contract_id: &str,
        version: i32,
        user_id: &str,
        chapter: i32,
        at: OffsetDateTime,
    ) -> StoreResult<()>;
    async fn readings(
        &self,
        contract_id: &str,
        version: i32,
        user_id: &str,
    ) -> StoreResult<Vec<Reading>>;
}

macro_rules! impl_people_store {
    ($store:ty) => {
        mod people_store {
            use super::*;
            use $crate::store::people::{PhoneChallenge, Reading};
            use $crate::store::sql::{REFRESH_COLS, USER_COLS};
            use $crate::store::{RefreshToken, StoreError, StoreResult, User};

            const CHALLENGE_COLS: &str =
                "id, phone_hash, phone_enc, code_hash, attempts, created_at, expires_at, used_at";

            #[async_trait::async_trait]
            impl $crate::store::people::PeopleStore for $store {
                async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>> {
                    let sql = format!("SELECT {REFRESH_COLS} FROM refresh_tokens WHERE token_hash = $1");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(token_hash)
                        .fetch_optional(&self.lend)
                        .await?)
                }

                async fn insert_phone_challenge(&self, c: &PhoneChallenge) -> StoreResult<()> {
                    let sql = format!(
                        "INSERT INTO phone_challenges ({CHALLENGE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(&c.id)
                        .bind(&c.phone_hash)
                        .bind(&c.phone_enc)
                        .bind(&c.code_hash)
                        .bind(c.attempts)
                        .bind(c.created_at)
                        .bind(c.expires_at)
                        .bind(c.used_at)
                        .execute(&self.lend)
                        .await?;
                    Ok(())
                }

                async fn phone_challenge(&self, id: &str) -> StoreResult<Option<PhoneChallenge>> {
                    let sql = format!("SELECT {CHALLENGE_COLS} FROM phone_challenges WHERE id = $1");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(id)
                        .fetch_optional(&self.lend)
                        .await?)
                }

                async fn phone_challenges_since(
                    &self,
                    phone_hash: &str,
                    since: time::OffsetDateTime,
                ) -> StoreResult<i64> {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM phone_challenges WHERE phone_hash = $1 AND created_at >= $2",
                    )
                    .bind(phone_hash)
                    .bind(since)
                    .fetch_one(&self.lend)
                    .await?;
                    Ok(n)
                }

                async fn count_phone_attempt(&self, id: &str) -> StoreResult<i32> {
                    let (n,): (i32,) = sqlx::query_as(
                        "UPDATE phone_challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
                    )
                    .bind(id)
                    .fetch_one(&self.lend)
                    .await?;
                    Ok(n)
                }

                async fn use_phone_challenge(&self, id: &str, at: time::OffsetDateTime) -> StoreResult<bool> {
                    Ok(sqlx::query("UPDATE phone_challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                        .bind(at)
                        .bind(id)
                        .execute(&self.lend)
                        .await?
                        .rows_affected()
                        == 1)
                }

                async fn user_by_phone_hash(&self, phone_hash: &str) -> StoreResult<Option<User>> {
                    let sql = format!("SELECT {USER_COLS} FROM users WHERE phone_hash = $1");
                    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(phone_hash)
                        .fetch_optional(&self.lend)
                        .await?)
                }

                async fn insert_user_with_phone(
                    &self,
                    u: &User,
                    phone_enc: &str,
                    phone_hash: &str,
                ) -> StoreResult<bool> {
                    let sql = format!(
                        "INSERT INTO users ({USER_COLS}, phone_enc, phone_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    );
                    let res = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
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
                        .bind(phone_enc)
                        .bind(phone_hash)
                        .execute(&self.lend)
                        .await;
                    match res.map_err(StoreError::from) {
                        Ok(_) => Ok(true),
                        Err(StoreError::Conflict { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                }

                async fn user_phone(&self, user_id: &str) -> StoreResult<Option<String>> {
                    let row: Option<(Option<String>,)> =
                        sqlx::query_as("SELECT phone_enc FROM users WHERE id = $1")
                            .bind(user_id)
                            .fetch_optional(&self.lend)
                            .await?;
                    Ok(row.and_then(|r| r.0))
                }

                async fn record_reading(
                    &self,
                    contract_id: &str,
                    version: i32,
                    user_id: &str,
                    chapter: i32,
                    at: time::OffsetDateTime,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO contract_readings (contract_id, version, user_id, chapter, opened_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (contract_id, version, user_id, chapter) DO NOTHING",
                    )
                    .bind(contract_id)
                    .bind(version)
                    .bind(user_id)
                    .bind(chapter)
                    .bind(at)
                    .execute(&self.lend)
                    .await?;
                    Ok(())
                }

                async fn readings(&self, contract_id: &str, version: i32, user_id: &str) -> StoreResult<Vec<Reading>> {
                    Ok(sqlx::query_as(
                        "SELECT chapter, opened_at FROM contract_readings WHERE contract_id = $1 AND version = $2 AND user_id = $3 ORDER BY chapter",
                    )
                    .bind(contract_id)
                    .bind(version)
                    .bind(user_id)
                    .fetch_all(&self.lend)
                    .await?)
                }
            }
        }
    };
}
pub(crate) use impl_people_store;
