//! `camseal decrypt`.
