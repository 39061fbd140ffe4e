//! `camseal verify`.
