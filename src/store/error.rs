//! What can go wrong in storage, told apart: callers branch on "not found"
//! and "already exists" instead of checking first and racing.

/// A storage failure. `NotFound` and `Conflict` are outcomes a caller can
/// act on (answer 404, report the duplicate); the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `fetch_one` found no row.
    #[error("no such row")]
    NotFound,
    /// A unique or primary key already holds this value.
    #[error("conflicts with an existing row ({constraint})")]
    Conflict { constraint: String },
    /// A row did not have the shape its row type expects.
    #[error("cannot read a row: {0}")]
    Decode(String),
    #[error("a query built for one backend was run on the other")]
    WrongBackend,
    #[error(transparent)]
    Database(sqlx::Error),
}

impl StoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// The store error inside an `anyhow` chain, for callers several layers up.
    pub fn of(e: &anyhow::Error) -> Option<&StoreError> {
        e.chain().find_map(|c| c.downcast_ref::<StoreError>())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => StoreError::Decode(e.to_string()),
            sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::Conflict {
                constraint: d
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| d.message().to_owned()),
            },
            e => StoreError::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
