//! WA SMILE: a WhatsApp collections bot for BPJS Ketenagakerjaan
//! contribution arrears. The binary (`src/main.rs`) is a thin CLI over this
//! library.

pub mod audit;
pub mod case_log;
pub mod config;
pub mod conversation;
pub mod domain;
pub mod store;
pub mod testing;
pub mod time;
pub mod webhook;
