//! `camseal demo`.
