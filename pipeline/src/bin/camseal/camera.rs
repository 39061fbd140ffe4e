//! `camseal camera`: the camera identity and its trusted recipient list.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use camseal::home::{self, CameraHome, HomeError};
use camseal::keys::{CameraSecret, KEM_X25519_HKDF_SHA256, Recipient};

use crate::cli::{CameraInitArgs, CameraTrustArgs};
use crate::viewer::write_files;

/// `camseal camera init`: a new camera identity key.
pub fn init(args: CameraInitArgs) -> Result<ExitCode> {
    let home = CameraHome::at(&args.home);
    if home.has_camera()? {
        return Err(HomeError::CameraExists {
            dir: home.dir().to_owned(),
        }
        .into());
    }
    let camera = CameraSecret::generate()?;
    let home = CameraHome::create(&args.home)?;
    home.write_camera(&camera)?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Created camera {} in {}",
        camera.public().id(),
        home.dir().display()
    )?;
    write_files(
        &mut out,
        &[
            (
                home.key_path(),
                "private key (mode 0600): it signs this camera's footage",
            ),
            (
                home.public_path(),
                "public key: viewers check footage against it",
            ),
        ],
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `camseal camera trust`: install a signed recipient list.
pub fn trust(args: CameraTrustArgs) -> Result<ExitCode> {
    let home = CameraHome::open(&args.home)?;
    let signed = home::read_file(&args.list, home::LIST_FILE_LIMIT)?;
    let outcome = home.trust(&signed)?;
    let list = &outcome.list;
    match outcome.previous_version {
        Some(_) if outcome.unchanged => println!(
            "Recipient list version {} is already installed in {}: nothing changed",
            list.version,
            home.dir().display()
        ),
        Some(previous) => println!(
            "Installed recipient list version {} (replacing version {previous}) in {}",
            list.version,
            home.dir().display()
        ),
        None => println!(
            "Installed recipient list version {} in {}",
            list.version,
            home.dir().display()
        ),
    }
    if outcome.newly_pinned {
        println!(
            "  account {} (pinned now: from here on only lists it signs are accepted)",
            list.account_id()
        );
    } else {
        println!("  account {} (pinned)", list.account_id());
    }
    println!(
        "  {} recipient{}:",
        list.recipients.len(),
        if list.recipients.len() == 1 { "" } else { "s" }
    );
    for r in &list.recipients {
        println!("    {}", describe_recipient(r));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line for a recipient: label, KEM and the start of the key.
pub fn describe_recipient(r: &Recipient) -> String {
    let kem = if r.kem == KEM_X25519_HKDF_SHA256 {
        "x25519".to_owned()
    } else {
        format!("kem 0x{:04x}", r.kem)
    };
    let prefix = hex::encode(&r.public_key[..r.public_key.len().min(8)]);
    let label = if r.label.is_empty() {
        "(no label)"
    } else {
        &r.label
    };
    format!("{label:<16} {kem} {prefix}...")
}
