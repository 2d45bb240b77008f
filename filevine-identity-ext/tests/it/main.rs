//! The integration tests: one binary, one module per area.
//!
//! Every HTTP test runs a real server on 127.0.0.1: the crate's own test
//! server (feature `test-util`) or a real OpenID provider (`oidc-provider`
//! from the npm registry, see `support::oidc`). Counters a test asserts on
//! belong to that test: each test starts its own server.

mod support;

mod api;
mod blocking;
mod device;
mod dpop;
mod examples;
mod fault_schedule;
mod faults;
mod fleet;
mod hostile;
mod late_writes;
mod load;
mod observability;
mod oidc;
mod oidc_pop;
mod postgres;
mod progenitor_client;
mod provider;
mod redaction;
mod redis_forms;
mod registry;
mod rotation;
mod signout;
mod store;
mod test_server_signin;
mod tls;
