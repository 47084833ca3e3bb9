//! Running ffprobe and ffmpeg: probing a source, generating a test clip, transcoding with
//! progress read from `-progress pipe:1`.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Why running a tool failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The program could not be started: not installed, or not on `PATH`.
    Missing {
        /// `ffmpeg` or `ffprobe`.
        tool: &'static str,
        /// What was run.
        program: PathBuf,
        /// The operating system's answer.
        reason: String,
    },
    /// It ran and failed, or its output made no sense.
    Failed(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Missing {
                tool,
                program,
                reason,
            } => {
                let part_of = if *tool == "ffmpeg" {
                    ""
                } else {
                    " (part of ffmpeg)"
                };
                write!(
                    f,
                    "{tool}{part_of} is not installed or not on PATH (could not run {}: {reason}); \
                     install ffmpeg, for example `apt-get install ffmpeg`",
                    program.display()
                )
            }
            ToolError::Failed(m) => f.write_str(m),
        }
    }
}

fn spawn_error(tool: &'static str, program: &Path, e: &io::Error) -> ToolError {
    if matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    ) {
        ToolError::Missing {
            tool,
            program: program.to_owned(),
            reason: e.to_string(),
        }
    } else {
        ToolError::Failed(format!("could not run {}: {e}", program.display()))
    }
}

/// What ffprobe says about a video.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Width of the first video stream.
    pub width: u32,
    /// Height of the first video stream.
    pub height: u32,
    /// Codec of the first video stream.
    pub codec: String,
    /// Whether there is an audio stream.
    pub has_audio: bool,
}

/// Probes `input` with ffprobe.
pub async fn probe(ffprobe: &Path, input: &Path) -> Result<Probe, ToolError> {
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(input)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| spawn_error("ffprobe", ffprobe, &e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(ToolError::Failed(format!(
            "not a video ffprobe can read: {}",
            last_lines(err.trim(), 3)
        )));
    }
    parse_probe(&out.stdout)
}

/// Parses ffprobe's JSON.
pub fn parse_probe(json: &[u8]) -> Result<Probe, ToolError> {
    let v: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ToolError::Failed(format!("unexpected ffprobe output: {e}")))?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .ok_or_else(|| ToolError::Failed("the file has no video stream".into()))?;
    let dim = |k: &str| {
        video[k]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
    };
    let (Some(width), Some(height)) = (dim("width"), dim("height")) else {
        return Err(ToolError::Failed(
            "the video stream has no frame size".into(),
        ));
    };
    let seconds = v["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| {
            ToolError::Failed("the file has no duration (a still image is not a video)".into())
        })?;
    Ok(Probe {
        duration_us: (seconds * 1e6) as u64,
        width,
        height,
        codec: video["codec_name"].as_str().unwrap_or("?").to_owned(),
        has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// One block of ffmpeg's `-progress` output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Output time written so far, in microseconds.
    pub out_time_us: Option<u64>,
    /// Frames written.
    pub frame: Option<u64>,
    /// Encoding speed in frames per second.
    pub fps: Option<f64>,
    /// Speed relative to real time, e.g. `4.2x`.
    pub speed: Option<String>,
    /// The last block (`progress=end`).
    pub end: bool,
}

impl Progress {
    /// Feeds one `key=value` line; returns whether it ended a block (`progress=…`).
    pub fn feed(&mut self, line: &str) -> bool {
        let Some((k, v)) = line.trim().split_once('=') else {
            return false;
        };
        let v = v.trim();
        match k {
            "out_time_us" => self.out_time_us = v.parse().ok(),
            "frame" => self.frame = v.parse().ok(),
            "fps" => self.fps = v.parse().ok(),
            "speed" => self.speed = (v != "N/A").then(|| v.to_owned()),
            "progress" => {
                self.end = v == "end";
                return true;
            }
            _ => {}
        }
        false
    }

    /// Fraction done of a `duration_us` output, 0 to 1.
    pub fn fraction(&self, duration_us: u64) -> f64 {
        if self.end {
            return 1.0;
        }
        match self.out_time_us {
            Some(t) if duration_us > 0 => (t as f64 / duration_us as f64).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Runs ffmpeg with `args` (after `-progress pipe:1 -nostats`), calling `on_progress` for every
/// progress block. Fails with ffmpeg's last error lines if it exits unsuccessfully.
pub async fn run(
    ffmpeg: &Path,
    args: &[OsString],
    mut on_progress: impl FnMut(&Progress),
) -> Result<(), ToolError> {
    let mut child = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error"])
        .args(["-progress", "pipe:1", "-nostats"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error("ffmpeg", ffmpeg, &e))?;
    // Drain stderr concurrently, so that a chatty ffmpeg never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut e| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = e.read_to_end(&mut buf).await;
            String::from_utf8_lossy(&buf).into_owned()
        })
    });
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        let mut p = Progress::default();
        while let Ok(Some(line)) = lines.next_line().await {
            if p.feed(&line) {
                on_progress(&p);
                p = Progress { end: false, ..p };
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| ToolError::Failed(format!("waiting for ffmpeg failed: {e}")))?;
    let err = match stderr {
        Some(h) => h.await.unwrap_or_default(),
        None => String::new(),
    };
    if status.success() {
        Ok(())
    } else {
        let tail = last_lines(err.trim(), 3);
        Err(ToolError::Failed(if tail.is_empty() {
            format!("ffmpeg failed ({status})")
        } else {
            format!("ffmpeg failed ({status}): {tail}")
        }))
    }
}

/// Arguments that synthesize a test clip: the `testsrc` pattern with a sine tone.
pub fn generate_args(
    seconds: u32,
    width: u32,
    height: u32,
    rate: u32,
    out: &Path,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "-f".to_owned(),
        "lavfi".to_owned(),
        "-i".to_owned(),
        format!("testsrc=duration={seconds}:size={width}x{height}:rate={rate}"),
        "-f".to_owned(),
        "lavfi".to_owned(),
        "-i".to_owned(),
        format!("sine=frequency=440:sample_rate=44100:duration={seconds}"),
        "-c:v".to_owned(),
        "libx264".to_owned(),
        "-preset".to_owned(),
        "veryfast".to_owned(),
        "-pix_fmt".to_owned(),
        "yuv420p".to_owned(),
        "-c:a".to_owned(),
        "aac".to_owned(),
        "-shortest".to_owned(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    a.push(out.into());
    a
}

/// Arguments that transcode `input` to `height` lines (width keeps the aspect ratio, even), H.264
/// and AAC in MP4.
pub fn transcode_args(input: &Path, height: u32, out: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-i".into(), input.into()];
    a.extend(
        [
            "-map".to_owned(),
            "0:v:0".to_owned(),
            "-map".to_owned(),
            "0:a:0?".to_owned(),
            "-vf".to_owned(),
            format!("scale=-2:{height}"),
            "-c:v".to_owned(),
            "libx264".to_owned(),
            "-preset".to_owned(),
            "veryfast".to_owned(),
            "-crf".to_owned(),
            "26".to_owned(),
            "-pix_fmt".to_owned(),
            "yuv420p".to_owned(),
            "-c:a".to_owned(),
            "aac".to_owned(),
            "-b:a".to_owned(),
            "96k".to_owned(),
            "-movflags".to_owned(),
            "+faststart".to_owned(),
        ]
        .into_iter()
        .map(OsString::from),
    );
    a.push(out.into());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_blocks() {
        let mut p = Progress::default();
        let text = "frame=30\nfps=0.00\nout_time_us=1200000\nspeed=2.4x\nprogress=continue\n";
        let mut blocks = 0;
        for l in text.lines() {
            if p.feed(l) {
                blocks += 1;
            }
        }
        assert_eq!(blocks, 1);
        assert_eq!(p.frame, Some(30));
        assert_eq!(p.speed.as_deref(), Some("2.4x"));
        assert!((p.fraction(3_000_000) - 0.4).abs() < 1e-9);
        assert!(!p.feed("out_time_us=N/A"));
        assert_eq!(p.out_time_us, None);
        assert!(p.feed("progress=end"));
        assert_eq!(p.fraction(3_000_000), 1.0);
    }

    #[test]
    fn probe_json() {
        let j = br#"{"streams":[{"codec_name":"h264","codec_type":"video","width":640,"height":360},{"codec_type":"audio","codec_name":"aac"}],"format":{"duration":"3.000000"}}"#;
        let p = parse_probe(j).unwrap();
        assert_eq!((p.width, p.height, p.duration_us), (640, 360, 3_000_000));
        assert!(p.has_audio);
        let still = br#"{"streams":[{"codec_type":"video","width":10,"height":10}],"format":{"duration":"N/A"}}"#;
        assert!(parse_probe(still)
            .unwrap_err()
            .to_string()
            .contains("still image"));
        assert!(parse_probe(br#"{"streams":[],"format":{}}"#).is_err());
    }

    #[test]
    fn missing_tool_names_ffmpeg() {
        let e = spawn_error(
            "ffprobe",
            Path::new("/nope/ffprobe"),
            &io::Error::from(io::ErrorKind::NotFound),
        );
        let m = e.to_string();
        assert!(
            m.contains("ffprobe (part of ffmpeg) is not installed"),
            "{m}"
        );
    }
}
