//! How bundle-command answers are printed: one table row per appliance, `list`'s tables, or the
//! replies as JSON.

use std::collections::BTreeMap;

use packd_wire::bundle::{BundleErrorCode, BundleReply, ListReply};
use packd_wire::reply::BundleRef;
use serde_json::Value;

use crate::answer::Answer;
use crate::local::human_bytes;
use crate::ranges::{format_ranges, normalise};
use crate::session::Target;

/// `name version`, or `-` for none.
fn bundle_label(bundle: Option<&BundleRef>) -> String {
    match bundle {
        Some(bundle) => format!("{} {}", bundle.name, bundle.version),
        None => "-".to_string(),
    }
}

/// `code: message` of a refusal (with the missing ranges of `missing_chunks`); empty otherwise.
fn error_text(answer: &Answer) -> String {
    match answer {
        Answer::Reply {
            reply: BundleReply::Error(refused),
            ..
        } => {
            let mut text = format!("{}: {}", refused.error.code, refused.error.message);
            if refused.error.code == BundleErrorCode::MissingChunks {
                let missing = refused
                    .missing
                    .iter()
                    .flatten()
                    .map(|&[start, end]| (start, end));
                let missing = normalise(missing.collect());
                text.push_str(&format!(" (missing {})", format_ranges(&missing)));
            }
            text
        }
        Answer::Reply { .. } => String::new(),
        Answer::Unreadable { why, .. } => format!("bad_reply: {why}"),
        Answer::Verdict { code, message, .. } => format!("{code}: {message}"),
    }
}

fn status_text(answer: &Answer) -> String {
    match answer {
        Answer::Reply { reply, .. } => reply.status().as_str().to_string(),
        Answer::Unreadable { raw, .. } => match &raw["status"] {
            Value::String(text) => text.clone(),
            Value::Null => "-".to_string(),
            other => other.to_string(),
        },
        Answer::Verdict { .. } => "error".to_string(),
    }
}

pub(crate) fn print_json(
    target: &Target,
    answers: &BTreeMap<String, Answer>,
) -> anyhow::Result<()> {
    let text = match target {
        Target::Device(_) if answers.len() == 1 => serde_json::to_string_pretty(
            &answers
                .values()
                .next()
                .map(Answer::to_json)
                .unwrap_or(Value::Null),
        )?,
        _ => serde_json::to_string_pretty(
            &answers.values().map(Answer::to_json).collect::<Vec<_>>(),
        )?,
    };
    println!("{text}");
    Ok(())
}

/// One row per appliance: device, status, bundle (with the previous one), error.
pub(crate) fn print_results(answers: &BTreeMap<String, Answer>) {
    let rows: Vec<[String; 4]> = answers
        .iter()
        .map(|(device, answer)| {
            let bundle = match answer.reply() {
                Some(BundleReply::Activation(activation)) => {
                    let mut bundle = bundle_label(Some(&activation.bundle));
                    if let Some(previous) = &activation.previous {
                        bundle.push_str(&format!(" (was {})", bundle_label(Some(previous))));
                    }
                    bundle
                }
                _ => "-".to_string(),
            };
            [
                device.clone(),
                status_text(answer),
                bundle,
                error_text(answer),
            ]
        })
        .collect();
    print_table(&["DEVICE", "STATUS", "BUNDLE", "ERROR"], &rows);
}

/// Each appliance's `list`: its active bundle, then a table of the installed ones.
pub(crate) fn print_lists(answers: &BTreeMap<String, Answer>) {
    let mut first = true;
    for (device, answer) in answers {
        if !first {
            println!();
        }
        first = false;
        match answer.reply() {
            Some(BundleReply::List(list)) => print_list(device, list),
            _ => println!("{device}: {}", error_text(answer)),
        }
    }
}

fn print_list(device: &str, list: &ListReply) {
    let active = list.active.as_ref();
    println!("{device}: active {}", bundle_label(active));
    let rows: Vec<[String; 6]> = list
        .installed
        .iter()
        .map(|bundle| {
            let is_active = active.is_some_and(|active| {
                bundle.name == active.name && bundle.version == active.version
            });
            [
                if is_active { "*" } else { "" }.to_string(),
                bundle.name.clone(),
                bundle.version.clone(),
                human_bytes(bundle.size),
                bundle.installed_at.clone(),
                if bundle.targets.is_empty() {
                    "-".to_string()
                } else {
                    bundle.targets.join(",")
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("  no bundles installed");
    } else {
        print_table(
            &["", "NAME", "VERSION", "SIZE", "INSTALLED", "TARGETS"],
            &rows,
        );
    }
}

fn print_table<const N: usize>(headings: &[&str; N], rows: &[[String; N]]) {
    let mut widths = headings.map(|heading| heading.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headings.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
