//! Storage on SQLite (the embedded default) and PostgreSQL.

mod column;
mod db;
mod error;

pub use column::{IntColumn, TextColumn, Zone};
pub use db::{
    list_placeholders, rows_per_statement, values_placeholders, Backend, Column, Conn, Db, Param,
    Query, Record, Row, Tx,
};
pub use error::{StoreError, StoreResult};
