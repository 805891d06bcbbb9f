//! Integration tests: one binary, real Postgres (a database per test), the real server on
//! 127.0.0.1:0, the generated tonic clients (and the real grpcurl binary).

mod admin;
mod auth;
mod changes;
mod cli;
mod click_batch;
mod click_storage;
mod clicks;
mod connect;
mod conventions;
mod events;
mod floods;
mod hang;
mod hostile;
mod integration;
mod isolation;
mod limits;
mod logs;
mod metrics;
mod migrations;
mod outage;
mod pg_cluster;
mod pg_restart;
mod proxy;
mod readme;
mod reads;
mod replicas;
mod rest;
mod robustness;
mod search_index;
mod server;
mod slow_clients;
mod sql_path;
mod support;
mod traces;
mod webhooks;
