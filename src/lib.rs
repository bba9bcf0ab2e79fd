//! WA SMILE: a WhatsApp collections bot for BPJS Ketenagakerjaan
//! contribution arrears. The binary (`src/main.rs`) is a thin CLI over this
//! library.

pub mod account_health;
pub mod accounts;
pub mod audit;
pub mod branches;
pub mod canned;
pub mod case;
pub mod case_actions;
pub mod case_log;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod exceptions;
pub mod export;
pub mod http;
pub mod import;
pub mod ledger;
pub mod media;
pub mod messages;
pub mod meta_events;
pub mod metrics;
pub mod outbox;
pub mod payment_callback;
pub mod payments;
pub mod pricing;
pub mod replies;
pub mod retention;
pub mod scan;
pub mod serve;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod templates_status;
pub mod templates_sync;
pub mod testing;
pub mod time;
pub mod webhook;
pub mod whatsapp;

// The case module's parts under their former paths, which callers use.
pub use case::list as caselist;
pub use case::view as cases;
