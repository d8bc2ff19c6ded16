//! Reading text and bytes, the lowest floor: JSON, numbers, durations and
//! times, cookies, query strings, host patterns, what a regex may cost,
//! and the byte forms the filter keeps. Nothing here knows a route.

pub mod byte_list;
pub mod bytes;
pub mod cookie;
pub mod decimal;
pub mod host_pattern;
pub mod json;
pub mod le_bytes;
pub mod literal_regex;
pub mod number;
pub mod query;
pub mod regex_cost;
pub mod time;
