//! The brief request (contract: "Brief (request)"), as clients build it.
//!
//! packd does not decode briefs with this type: its decoder (`src/brief`) reads hostile
//! payloads field by field, checks each value's type and bounds, and names the field at fault.
//! This is the shape clients (packctl, the tests) write, and packd's tests check that every
//! field of it is decoded as the contract says.

use serde::{Deserialize, Serialize};

/// A design brief. Fields are declared in alphabetical order, the order `serde_json` writes
/// a map in, so a brief serialises to the same bytes it did when clients built it as a map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BriefRequest {
    /// Audience terms ("young women", "gen z", "年轻女性").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// Up to 4 hex colours (`#RGB` or `#RRGGBB`) the palettes must respect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brand_colors: Vec<String>,
    /// Inference must start within this many milliseconds of arrival, else `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// The words a preview sets large instead of the product (at most 64 characters; a packd
    /// extension, not in the contract).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// The client's id for the brief, echoed in the reply (packd also takes a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A reference image, base64 (JPEG, PNG or WebP; at most 4 MiB decoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Free keywords, matched as far as the bundle's vocabulary allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Mood terms ("fresh", "summer limited", "国潮").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mood: Vec<String>,
    /// A palette family ("morandi", "莫兰迪色系").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub palette: Option<String>,
    /// Rank palettes that pass the colour-vision-deficiency check first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_cvd_safe: Option<bool>,
    /// The product type; the one required field.
    pub product: String,
    /// Add `preview_png` to the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<bool>,
    /// For MQTT 3.1.1 clients, which have no Response Topic: where the reply goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// How many styles, palettes and font pairings to return (1–10; packd's default is 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// The API version: [`crate::API_VERSION`].
    pub v: u32,
}

impl BriefRequest {
    /// A brief for `product` at the current API version, every optional field absent.
    pub fn new(product: impl Into<String>) -> BriefRequest {
        BriefRequest {
            product: product.into(),
            v: crate::API_VERSION,
            ..BriefRequest::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_serialises_like_the_map_clients_built() {
        let mut brief = BriefRequest::new("beverage");
        brief.id = Some("kiosk17-000123".into());
        brief.audience = vec!["young women".into(), "gen z".into()];
        brief.brand_colors = vec!["#1A73E8".into()];
        brief.top_k = Some(3);
        brief.render = Some(false);
        let map = serde_json::json!({
            "v": 1, "id": "kiosk17-000123", "product": "beverage",
            "audience": ["young women", "gen z"], "brand_colors": ["#1A73E8"],
            "top_k": 3, "render": false,
        });
        assert_eq!(
            serde_json::to_vec(&brief).unwrap(),
            serde_json::to_vec(&map).unwrap()
        );
        let back: BriefRequest = serde_json::from_value(map).unwrap();
        assert_eq!(back, brief);
    }
}
