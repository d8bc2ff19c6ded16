//! Deciding a request: the router finds the route by host and path, its
//! rules' conditions pick a target or a split, a split picks by weight
//! (sticky, random or by cookie), and a mirror copies.

pub(crate) mod header_names;
pub mod matcher;
pub mod mirror;
pub mod route;
pub(crate) mod route_index;
pub mod router;
pub mod split;
