//! `camseal viewer share` and `decrypt --share`: chosen segments' keys re-wrapped for a
//! third party, signed by the account (`camseal::share`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::footage::{SegmentFile, collect_paths, read_segment};
use camseal::home::{self, ViewerHome};
use camseal::keys::{CameraPublic, DevicePublic, RecipientSecret, device_id};
use camseal::segment::read::unwrap_base_key;
use camseal::share::{Share, ShareError, ToShare};

use crate::cli::ViewerShareArgs;

/// `camseal viewer share`: a share of the given segments for `--to`.
pub fn share(args: ViewerShareArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let account = home.account()?;
    let to = read_device_pub(&args.to)?;
    let paths = collect_paths(&args.segments)?;
    // The footage must come from a pinned camera, and every segment must verify: a share
    // vouches for what it names.
    let (_, files) = crate::decrypt::trusted_footage(&home, None, &paths)?;
    let Some(first) = files.first() else {
        bail!("no segments given");
    };
    let stream = first.header.stream_id;
    if let Some(other) = files.iter().find(|f| f.header.stream_id != stream) {
        bail!(
            "{} is of stream {}, {} of stream {stream}: a share covers one stream",
            other.path.display(),
            other.header.stream_id,
            first.path.display()
        );
    }
    // Both of the account's keys: the camera's lists may have named either kind.
    let secret = account.recipient_secrets();
    let mut keys = Vec::with_capacity(files.len());
    for f in &files {
        read_segment(f, None, |_| Ok(()))
            .with_context(|| format!("{} does not verify", f.path.display()))?;
        let key = unwrap_base_key(&f.header, &secret)
            .with_context(|| format!("cannot open the key of {}", f.path.display()))?;
        keys.push(key);
    }
    let to_share: Vec<ToShare<'_>> = files
        .iter()
        .zip(&keys)
        .map(|(f, k)| ToShare {
            seq: f.header.segment_seq,
            header_hash: f.header_hash,
            base_key: k,
        })
        .collect();
    let bytes = Share::grant(&account, first.header.camera_key, stream, &to, &to_share)?;
    camseal::fsutil::write_atomic(&args.out, &bytes, camseal::fsutil::PUBLIC)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let camera = CameraPublic {
        ed25519: first.header.camera_key,
    };
    println!(
        "Shared {} segment{} ({}) of camera {} stream {stream} with key {} ({}) -> {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        seqs(files.iter().map(|f| f.header.segment_seq)),
        camera.id(),
        device_id(to.kem.id(), &to.public_key),
        to.kem.name(),
        args.out.display()
    );
    println!(
        "  signed by account {}; the recipient opens them with `camseal decrypt --home THEIR_HOME --share {} SEGMENT...`, and nothing else of the stream",
        account.public().id(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A share loaded for `decrypt --share`, with the key of `home` it is addressed to.
pub struct Loaded {
    pub share: Share,
    /// The key of the home the share is addressed to.
    pub secret: RecipientSecret,
}

/// Loads a share, checks it is addressed to a key of `home`, and says who granted it.
pub fn load(home: &ViewerHome, path: &Path) -> Result<Loaded> {
    let bytes = home::read_file(path, 4 * 1024 * 1024)?;
    let share =
        Share::parse_signed(&bytes).with_context(|| format!("cannot use {}", path.display()))?;
    // The device's own key, then both of the account's: a share may be addressed to any.
    let mut keys: Vec<RecipientSecret> = home.device_key()?.into_iter().collect();
    if home.has_account()? {
        keys.extend(home.account()?.recipient_secrets());
    }
    let Some(secret) = share.addressed_key(&keys).cloned() else {
        return Err(ShareError::NotForYou).with_context(|| {
            format!(
                "{} (addressed to key {})",
                path.display(),
                device_id(share.kem, &share.recipient)
            )
        });
    };
    eprintln!(
        "share {}: granted by account {} for camera {} stream {}, segments {}",
        path.display(),
        share.account_id(),
        CameraPublic {
            ed25519: share.camera_key
        }
        .id(),
        share.stream_id,
        seqs(share.segments.iter().map(|s| s.seq))
    );
    Ok(Loaded { share, secret })
}

/// The camera footage is checked against with a share: the one it names (`--camera`, if
/// given, must be the same).
pub fn camera(share: &Share, given: Option<CameraPublic>) -> Result<CameraPublic> {
    let named = CameraPublic {
        ed25519: share.camera_key,
    };
    if let Some(given) = given
        && given != named
    {
        bail!(
            "the share is for camera {}, not for camera {} (--camera)",
            named.id(),
            given.id()
        );
    }
    Ok(named)
}

/// Refuses any segment the share does not name, before anything is decrypted, and returns
/// where the window starts (the first segment given, unless `from_seq` says otherwise).
pub fn check_files(share: &Share, files: &[SegmentFile], from_seq: Option<u64>) -> Result<u64> {
    for f in files {
        let seq = f.header.segment_seq;
        if !share.segments.iter().any(|s| s.seq == seq) || f.header.stream_id != share.stream_id {
            return Err(camseal::footage::FootageError::Share {
                path: f.path.clone(),
                source: ShareError::NotShared { seq },
            }
            .into());
        }
    }
    Ok(from_seq.unwrap_or_else(|| files.first().map_or(0, |f| f.header.segment_seq)))
}

fn read_device_pub(path: &Path) -> Result<DevicePublic> {
    let text = String::from_utf8(home::read_file(path, 4096)?)
        .with_context(|| format!("{} is not a device public key file", path.display()))?;
    DevicePublic::from_text(&text)
        .with_context(|| format!("{} is not a device public key file", path.display()))
}

fn seqs(seqs: impl Iterator<Item = u64>) -> String {
    seqs.map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}
