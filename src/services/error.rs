//! The one error the services return. Each carries a stable machine code (never renamed: clients
//! branch on it) and a message in Chinese for the person in front of the screen. Internal causes
//! stay in the log.

use crate::store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a JSON path into the request (`buyers[0].id_number`).
    pub field: String,
    /// The rule that failed (`required`, `checksum`, `too_long`, …).
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{code}: {message}")]
    Invalid {
        code: &'static str,
        message: String,
        fields: Vec<FieldError>,
    },
    #[error("{code}: {message}")]
    Unauthenticated { code: &'static str, message: String },
    #[error("{code}: {message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{code}: {message}")]
    NotFound { code: &'static str, message: String },
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    #[error("{code}: {message}")]
    RateLimited {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("{code}: {message}")]
    Unavailable { code: &'static str, message: String },
    /// Overloaded for a moment: try again after the given seconds (503 with `Retry-After`).
    #[error("{code}: {message}")]
    Busy {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        Error::Invalid {
            code: "validation_failed",
            message: "提交的数据未通过校验，请按字段提示修改。".into(),
            fields,
        }
    }
    pub fn not_found(what: &str) -> Self {
        Error::NotFound {
            code: "not_found",
            message: format!("未找到{what}，或您无权查看。"),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }
    /// The HTTP status that says the same (the API's problems and the pages' error pages).
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid { .. } => 422,
            Error::Unauthenticated { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict { .. } => 409,
            Error::RateLimited { .. } => 429,
            Error::Unavailable { .. } | Error::Busy { .. } => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The message for people (a fixed one for internal errors, whose cause is never shown).
    pub fn message(&self) -> &str {
        match self {
            Error::Invalid { message, .. }
            | Error::Unauthenticated { message, .. }
            | Error::Forbidden { message, .. }
            | Error::NotFound { message, .. }
            | Error::Conflict { message, .. }
            | Error::RateLimited { message, .. }
            | Error::Unavailable { message, .. }
            | Error::Busy { message, .. } => message,
            Error::Internal(_) => "服务内部错误，请稍后再试。",
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { code, .. }
            | Error::Unauthenticated { code, .. }
            | Error::Forbidden { code, .. }
            | Error::NotFound { code, .. }
            | Error::Conflict { code, .. }
            | Error::RateLimited { code, .. }
            | Error::Unavailable { code, .. }
            | Error::Busy { code, .. } => code,
            Error::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { constraint } => Error::Conflict {
                code: "conflict",
                message: format!("数据与已有记录冲突（{}）。", short_constraint(&constraint)),
            },
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                Error::database_unavailable()
            }
            other => Error::Internal(other.into()),
        }
    }
}

impl Error {
    /// 503 with `Retry-After`: a retry with the same Idempotency-Key finds out whether a change
    /// in flight when the connection broke was committed.
    pub fn database_unavailable() -> Self {
        Error::Busy {
            code: "database_unavailable",
            message: "数据库暂时不可用，请稍后重试。".into(),
            retry_after_secs: 2,
        }
    }
}

/// SQLite reports "UNIQUE constraint failed: users.username"; keep only the column part so no
/// value reaches the client.
fn short_constraint(c: &str) -> &str {
    c.rsplit(": ").next().unwrap_or(c)
}
