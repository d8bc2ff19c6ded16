//! Reading text and bytes, the lowest floor: JSON, numbers, durations and
//! times, cookies, query strings, host patterns, what a regex may cost,
//! and the byte forms the filter keeps. Nothing here knows a route.

pub(crate) mod byte_list;
pub(crate) mod bytes;
pub(crate) mod cookie;
pub mod decimal;
pub mod host_pattern;
pub mod json;
pub mod json_scan;
pub(crate) mod le_bytes;
pub(crate) mod literal_regex;
pub(crate) mod number;
pub mod query;
pub mod regex_cost;
pub mod time;
