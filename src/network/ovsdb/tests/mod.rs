//! Unit tests without a server: the transactions' exact JSON, the reading
//! of results in every encoding, targets; and the client against a fake
//! server on a unix socket ([`fake`]).

mod client;
mod fake;
mod results;
mod target;
mod transactions;
