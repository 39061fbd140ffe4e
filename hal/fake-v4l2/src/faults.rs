//! `FAKE_V4L2_FAULT`: a comma-separated list of
//! - `error:N`: the N-th frame (1-based) fails to encode; its CAPTURE buffer comes back
//!   flagged `V4L2_BUF_FLAG_ERROR`.
//! - `reorder:N`: the N-th CAPTURE buffer delivered swaps with the one after it.

/// Injected faults.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    errors: Vec<u64>,
    reorders: Vec<u64>,
}

impl Faults {
    pub(crate) fn from_env() -> Result<Faults, String> {
        match std::env::var("FAKE_V4L2_FAULT") {
            Ok(spec) => Faults::parse(&spec),
            Err(_) => Ok(Faults::default()),
        }
    }

    pub(crate) fn parse(spec: &str) -> Result<Faults, String> {
        let mut faults = Faults::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kind, n) = entry
                .split_once(':')
                .ok_or_else(|| format!("FAKE_V4L2_FAULT entry {entry:?}: expected kind:N"))?;
            let n: u64 = n
                .parse()
                .map_err(|_| format!("FAKE_V4L2_FAULT entry {entry:?}: N is not a number"))?;
            match kind {
                "error" => faults.errors.push(n),
                "reorder" => faults.reorders.push(n),
                _ => return Err(format!("FAKE_V4L2_FAULT entry {entry:?}: unknown kind")),
            }
        }
        Ok(faults)
    }

    pub(crate) fn error_at(&self, frame: u64) -> bool {
        self.errors.contains(&frame)
    }

    pub(crate) fn reorder_at(&self, delivered: u64) -> bool {
        self.reorders.contains(&delivered)
    }
}
