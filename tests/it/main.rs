//! The integration tests, one binary: every file links the library once
//! instead of once per file, which keeps a rebuild to one link step.

// Tests may read a column by name to check what was stored; the library
// may not (clippy.toml).
#![allow(clippy::disallowed_methods)]

mod export_support;
mod support;

mod admin;
mod api;
mod audit;
mod browser;
mod case_figures;
mod cli;
mod connections;
mod conversation;
mod corrections;
mod delivery;
mod demo;
mod export;
mod health;
mod import;
mod instances;
mod money;
mod ops;
mod replies;
mod retention;
mod scan;
mod simulator;
mod supervisors;
mod webhook;
mod webhook_routes;
mod whatsapp_client;
mod worklist;
