//! WA SMILE: a WhatsApp collections bot for BPJS Ketenagakerjaan
//! contribution arrears. The binary (`src/main.rs`) is a thin CLI over this
//! library.

pub mod account_health;
pub mod accounts;
pub mod audit;
pub mod case_actions;
pub mod case_log;
pub mod caselist;
pub mod cases;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod export;
pub mod http;
pub mod import;
pub mod ledger;
pub mod messages;
pub mod meta_events;
pub mod metrics;
pub mod payments;
pub mod pricing;
pub mod replies;
pub mod retention;
pub mod scan;
pub mod serve;
pub mod simulator;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod templates_status;
pub mod templates_sync;
pub mod testing;
pub mod time;
pub mod webhook;
pub mod whatsapp;
