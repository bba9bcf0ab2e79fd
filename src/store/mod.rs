//! Storage on SQLite (the embedded default) and PostgreSQL.

mod db;

pub use db::{
    list_placeholders, rows_per_statement, values_placeholders, Backend, Column, Conn, Db, Param,
    Query, Row, Tx,
};
