//! `camseal camera`.
