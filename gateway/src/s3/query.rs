//! The query string of a request as decoded (name, value) pairs, in order, empty values kept:
//! `?uploads` is `("uploads", "")`, `?versionId=` is `("versionId", "")`.
//!
//! Decoding is `application/x-www-form-urlencoded` as S3 reads it: `%XX` escapes (strict, as
//! for paths) and `+` as a space, so a literal plus in a prefix must arrive as `%2B`. Empty
//! segments (`a&&b`, a trailing `&`) are skipped. Names are case-sensitive (`uploadId`).

use super::addressing::{AddressError, decode};

/// Default most parameters in one query string.
pub const QUERY_PARAMS_MAX_DEFAULT: usize = 100;

/// Decoded query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    /// Parses the query string (without the `?`; `None` or `""` for none) into at most
    /// `params_max` parameters.
    pub fn parse(raw: Option<&str>, params_max: usize) -> Result<Query, AddressError> {
        let mut params = Vec::new();
        for segment in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            if params.len() == params_max {
                return Err(AddressError::TooManyQueryParams { limit: params_max });
            }
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            params.push((decode(name, true)?, decode(value, true)?));
        }
        Ok(Query { params })
    }

    /// All parameters in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a parameter called `name` is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.params.iter().any(|(n, _)| n == name)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}
