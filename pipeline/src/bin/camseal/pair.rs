//! `camseal camera setup` and `camseal viewer pair`: the TCP shell around the sans-I/O
//! pairing exchange in `camseal::pairing` (docs/PROTOCOL.md §9).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use camseal::home::{CameraHome, PinOutcome, ViewerHome};
use camseal::keys::{CameraSecret, RecipientList};
use camseal::pairing::{
    ExpectCameraResult, ExpectCameraShare, ExpectViewerHello, ExpectViewerList, PairingError,
    SetupCode, ViewerStart, frame, frame_len,
};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

use crate::cli::{CameraSetupArgs, ViewerPairArgs};

/// `camseal camera setup`: show a setup code and wait for one viewer to pair with it.
pub fn camera_setup(args: CameraSetupArgs) -> Result<ExitCode> {
    let home = CameraHome::create(&args.home)?;
    let mut out = io::stdout().lock();
    if !home.has_camera()? {
        let camera = CameraSecret::generate()?;
        home.write_camera(&camera)?;
        writeln!(
            out,
            "Created camera {} in {}",
            camera.public().id(),
            home.dir().display()
        )?;
    }
    let camera = home.camera()?;
    let listener = TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let code = SetupCode::generate()?;
    writeln!(
        out,
        "Camera {} is waiting to pair on {local}",
        camera.public().id()
    )?;
    writeln!(out, "Setup code: {}", code.as_str())?;
    let uri = format!("camseal-pair:{}?code={}", local.port(), code.as_str());
    match QrCode::new(uri.as_bytes()) {
        Ok(qr) => writeln!(out, "{}", qr.render::<Dense1x2>().quiet_zone(true).build())?,
        Err(e) => writeln!(out, "(no QR code: {e})")?,
    }
    writeln!(
        out,
        "On the viewer: camseal viewer pair --home DIR --camera ADDR:{} --code {}",
        local.port(),
        code.as_str()
    )?;
    out.flush()?;
    drop(out);
    if let Some(path) = &args.code_file {
        camseal::fsutil::write_atomic(
            path,
            format!("{}\n", code.as_str()).as_bytes(),
            camseal::fsutil::PRIVATE,
        )
        .with_context(|| format!("cannot write the setup code to {}", path.display()))?;
    }

    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut failures = 0u32;
    loop {
        let (stream, peer) = listener.accept().context("cannot accept a connection")?;
        match camera_attempt(stream, timeout, &code, &home, &camera) {
            Ok(Done::Paired(list)) => {
                println!(
                    "Paired: installed recipient list version {} from account {} ({} recipient{}); \
                     viewer at {peer}",
                    list.version,
                    list.account_id(),
                    list.recipients.len(),
                    if list.recipients.len() == 1 { "" } else { "s" }
                );
                for r in &list.recipients {
                    println!("    {}", crate::describe::describe_recipient(r));
                }
                return Ok(ExitCode::SUCCESS);
            }
            Ok(Done::Refused(reason)) => {
                bail!(
                    "the viewer at {peer} proved the setup code, but its list was refused: {reason}"
                )
            }
            Err(Attempt { error, counted }) => {
                if counted {
                    failures += 1;
                }
                eprintln!(
                    "pairing attempt from {peer} failed: {error} ({failures} of {MAX_FAILURES} failed attempts)"
                );
                if failures >= MAX_FAILURES {
                    bail!(
                        "setup ended after {MAX_FAILURES} failed pairing attempts; run `camseal \
                         camera setup` again for a new setup code"
                    );
                }
            }
        }
    }
}

/// `camseal viewer pair`: pair with a camera in setup mode, send it a new signed recipient
/// list, and pin its key.
pub fn viewer_pair(args: ViewerPairArgs) -> Result<ExitCode> {
    let code = SetupCode::parse(&args.code)?;
    let home = ViewerHome::open(&args.home)?;
    let (list, signed) = crate::viewer::next_signed_list(&home)?;
    let version = list.version;
    let addr = resolve(&args.camera)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to the camera at {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // Recorded before the list leaves this process, so a version is never handed out twice.
    home.record_recipients_version(version)?;
    home.store_signed_list(&list, &signed)?;

    let (state, hello) = ViewerStart::start(&code, signed)?;
    send(&mut stream, &hello)?;
    let share = receive(&mut stream, ExpectCameraShare::MAX_LEN)?;
    let (state, list_msg) = state.receive(&share)?;
    send(&mut stream, &list_msg)?;
    let result = receive(&mut stream, ExpectCameraResult::MAX_LEN)?;
    let camera = state.receive(&result)?;

    let outcome = home.pin_camera(&camera, args.name.as_deref())?;
    println!(
        "Paired with camera {} at {addr}: it installed recipient list version {version} ({} \
         recipient{}, account {})",
        camera.id(),
        list.recipients.len(),
        if list.recipients.len() == 1 { "" } else { "s" },
        list.account_id()
    );
    match outcome {
        PinOutcome::Added => println!(
            "Pinned camera {} in {}: `camseal decrypt` accepts its footage",
            camera.id(),
            home.dir().display()
        ),
        PinOutcome::AlreadyPinned | PinOutcome::Renamed { .. } => println!(
            "Camera {} was already pinned in {}",
            camera.id(),
            home.dir().display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

enum Done {
    Paired(RecipientList),
    Refused(String),
}

/// A failed attempt: why, whether it used up one of the allowed failures (the peer got the
/// camera's confirmation, and with it one guess of the code).
struct Attempt {
    error: anyhow::Error,
    counted: bool,
}

fn camera_attempt(
    mut stream: TcpStream,
    timeout: Duration,
    code: &SetupCode,
    home: &CameraHome,
    camera: &CameraSecret,
) -> Result<Done, Attempt> {
    let state = ExpectViewerHello::new(code.clone());
    let fail = |error: anyhow::Error, counted: bool| Attempt { error, counted };
    if let Err(e) = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
    {
        return Err(fail(e.into(), false));
    }
    let hello = receive(&mut stream, ExpectViewerHello::MAX_LEN).map_err(|e| fail(e, false))?;
    let (state, share) = state.receive(&hello).map_err(|e| fail(e.into(), false))?;
    // From here on the peer can check one guess against our confirmation: the attempt counts
    // as failed unless its own confirmation verifies.
    send(&mut stream, &share).map_err(|e| fail(e, true))?;
    let list_msg = receive(&mut stream, ExpectViewerList::MAX_LEN).map_err(|e| fail(e, true))?;
    let (signed, answer) = state.receive(&list_msg).map_err(|e| fail(e.into(), true))?;
    match home.trust(&signed) {
        Ok(outcome) => {
            let msg = answer
                .paired(camera, &signed)
                .map_err(|e| fail(e.into(), false))?;
            // The list is installed whether or not this last message arrives; the viewer
            // then reports a failure and can pair again with a new code.
            if let Err(e) = send(&mut stream, &msg) {
                eprintln!("warning: could not send the camera key to the viewer: {e:#}");
            }
            Ok(Done::Paired(outcome.list))
        }
        Err(e) => {
            let reason = e.to_string();
            if let Ok(msg) = answer.refused(&reason) {
                let _ = send(&mut stream, &msg);
            }
            Ok(Done::Refused(reason))
        }
    }
}

fn resolve(camera: &str) -> Result<SocketAddr> {
    camera
        .to_socket_addrs()
        .with_context(|| format!("{camera:?} is not ADDR:PORT"))?
        .next()
        .with_context(|| format!("{camera:?} resolves to no address"))
}

fn send(stream: &mut TcpStream, message: &[u8]) -> Result<()> {
    stream
        .write_all(&frame(message))
        .and_then(|()| stream.flush())
        .context("cannot send a pairing message")
}

fn receive(stream: &mut TcpStream, cap: usize) -> Result<Vec<u8>> {
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .context("the peer closed the connection or timed out")?;
    let len = frame_len(header, cap).map_err(|e: PairingError| anyhow::Error::new(e))?;
    let mut message = vec![0u8; len];
    stream
        .read_exact(&mut message)
        .context("the peer closed the connection or timed out mid-message")?;
    Ok(message)
}

const MAX_FAILURES: u32 = 5;
