//! Fault injection, from `FAKE_MPP_FAULT`: a comma-separated list of
//!
//! | fault | effect |
//! |---|---|
//! | `create` | `mpp_create` fails with `MPP_ERR_MALLOC` |
//! | `init` | `mpp_init` fails with `MPP_NOK`, as it does without `/dev/mpp_service` |
//! | `cfg` | `MPP_ENC_SET_CFG` fails with `MPP_ERR_VALUE` |
//! | `put:N` | the N-th `encode_put_frame` (from 1) fails with `MPP_ERR_VPUHW` |
//! | `get:N` | the N-th `encode_get_packet` fails with `MPP_ERR_VPUHW` |
//! | `timeout:N` | the N-th `encode_get_packet` times out once (`MPP_ERR_TIMEOUT`) |
//! | `stall` | every `encode_get_packet` times out (`MPP_OK` and no packet, as MPP's sync mode does) |
//! | `eos:N` | the stream ends (an EOS packet) after N packets |
//! | `import` | `mpp_buffer_import_with_tag` fails with `MPP_NOK` |
//! | `empty:N` | the N-th packet is empty and not EOS, as after a hardware error (`mpp_enc_impl.cpp`: "enc failed force idr"); the next packet is an IDR |
//! | `slow-put:N` | the N-th `encode_put_frame` in sync mode times out (`MPP_NOK`) after queuing the frame, which the encoder still holds |
//! | `no-intra-meta` | packets carry no `KEY_OUTPUT_INTRA` |
//! | `wrong-intra-meta` | `KEY_OUTPUT_INTRA` says the opposite of the bitstream |
//!
//! An unknown entry aborts the first call that reads the list, so a typo cannot silently
//! disable a test.

use std::sync::OnceLock;

#[derive(Debug, Default)]
pub struct Faults {
    pub create: bool,
    pub init: bool,
    pub cfg: bool,
    pub put: Option<u64>,
    pub get: Option<u64>,
    pub timeout: Option<u64>,
    pub stall: bool,
    pub eos: Option<u64>,
    pub import: bool,
    pub empty: Option<u64>,
    pub slow_put: Option<u64>,
    pub no_intra_meta: bool,
    pub wrong_intra_meta: bool,
}

pub fn faults() -> &'static Faults {
    static FAULTS: OnceLock<Faults> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let spec = std::env::var("FAKE_MPP_FAULT").unwrap_or_default();
        match parse(&spec) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("fake-mpp: bad FAKE_MPP_FAULT {spec:?}: {e}");
                std::process::abort()
            }
        }
    })
}

fn parse(spec: &str) -> Result<Faults, String> {
    let mut f = Faults::default();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, arg) = match entry.split_once(':') {
            Some((n, a)) => (
                n,
                Some(
                    a.parse::<u64>()
                        .map_err(|_| format!("{entry}: {a:?} is not a count"))?,
                ),
            ),
            None => (entry, None),
        };
        let need = |arg: Option<u64>| arg.ok_or(format!("{name} needs a count, as {name}:N"));
        match name {
            "create" => f.create = true,
            "init" => f.init = true,
            "cfg" => f.cfg = true,
            "put" => f.put = Some(need(arg)?),
            "get" => f.get = Some(need(arg)?),
            "timeout" => f.timeout = Some(need(arg)?),
            "stall" => f.stall = true,
            "eos" => f.eos = Some(need(arg)?),
            "import" => f.import = true,
            "empty" => f.empty = Some(need(arg)?),
            "slow-put" => f.slow_put = Some(need(arg)?),
            "no-intra-meta" => f.no_intra_meta = true,
            "wrong-intra-meta" => f.wrong_intra_meta = true,
            _ => return Err(format!("unknown fault {name:?}")),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_rejects_typos() {
        let f = parse("init, timeout:3,eos:10,no-intra-meta").unwrap();
        assert!(f.init && f.no_intra_meta && !f.cfg);
        assert_eq!((f.timeout, f.eos, f.get), (Some(3), Some(10), None));
        assert!(parse("").unwrap().put.is_none());
        assert!(parse("tiemout:3").is_err());
        assert!(parse("timeout").is_err());
        assert!(parse("timeout:x").is_err());
        let f = parse("empty:4,slow-put:2").unwrap();
        assert_eq!((f.empty, f.slow_put), (Some(4), Some(2)));
        assert!(parse("empty").is_err());
    }
}
