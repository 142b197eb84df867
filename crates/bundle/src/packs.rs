//! The pack forms a preview is drawn on (`catalogues/packs.json`, optional): a box front, a
//! bottle label, a pouch…, each with its panel size and the products sold in it.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::catalogue::Vocabulary;
use crate::manifest::Manifest;
use crate::BundleError;

/// Where a bundle lists its pack forms.
pub const PACKS_FILE: &str = "catalogues/packs.json";
/// Smallest panel side in pixels a pack form may ask for.
pub const MIN_PANEL_SIDE: u32 = 240;
/// Largest panel side in pixels, which bounds a preview's pixel buffer at 4.9 MB.
pub const MAX_PANEL_SIDE: u32 = 1280;
/// The id of the form a bundle without `packs.json` draws every product on.
pub const BOX_FRONT: &str = "box";

/// A panel size in pixels, each side within `MIN_PANEL_SIDE..=MAX_PANEL_SIDE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelSize {
    width: u32,
    height: u32,
}

impl PanelSize {
    /// A 720 × 960 box front (3:4), what previews were before pack forms.
    pub const BOX_FRONT: PanelSize = PanelSize {
        width: 720,
        height: 960,
    };

    /// Width in pixels.
    pub fn width(self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(self) -> u32 {
        self.height
    }
}

/// A panel size with a side out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("panel {width}×{height} is outside {MIN_PANEL_SIDE}..={MAX_PANEL_SIDE} a side")]
pub struct PanelSizeError {
    /// The width asked for.
    pub width: u32,
    /// The height asked for.
    pub height: u32,
}

impl TryFrom<(u32, u32)> for PanelSize {
    type Error = PanelSizeError;

    fn try_from((width, height): (u32, u32)) -> Result<Self, Self::Error> {
        let range = MIN_PANEL_SIDE..=MAX_PANEL_SIDE;
        if range.contains(&width) && range.contains(&height) {
            Ok(PanelSize { width, height })
        } else {
            Err(PanelSizeError { width, height })
        }
    }
}

/// One pack form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackForm {
    /// Its id, e.g. `bottle_label`.
    pub id: String,
    /// Its English name, e.g. `bottle label`.
    pub name: String,
    /// Its Chinese name.
    pub name_zh: String,
    /// The front panel's size.
    pub size: PanelSize,
}

/// The pack forms and which product goes on which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackCatalogue {
    forms: Vec<PackForm>,
    default: usize,
    /// Product term id → index into `forms`.
    by_product: HashMap<String, usize>,
}

impl PackCatalogue {
    /// One box front for every product: a bundle without `packs.json`.
    pub fn box_only() -> PackCatalogue {
        PackCatalogue {
            forms: vec![PackForm {
                id: BOX_FRONT.to_string(),
                name: "box front".to_string(),
                name_zh: "盒装正面".to_string(),
                size: PanelSize::BOX_FRONT,
            }],
            default: 0,
            by_product: HashMap::new(),
        }
    }

    /// The form `product` (a term id such as `product:tea`, or none) is drawn on.
    pub fn for_product(&self, product: Option<&str>) -> &PackForm {
        let index = product
            .and_then(|id| self.by_product.get(id))
            .copied()
            .unwrap_or(self.default);
        &self.forms[index]
    }

    /// Every form, in catalogue order.
    pub fn forms(&self) -> &[PackForm] {
        &self.forms
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[allow(dead_code)]
    version: String,
    default: String,
    packs: Vec<RawForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    id: String,
    name: String,
    name_zh: String,
    width: u32,
    height: u32,
    products: Vec<String>,
}

fn invalid(message: String) -> BundleError {
    BundleError::Catalogue {
        file: PACKS_FILE.to_string(),
        message,
    }
}

/// Reads the bundle's pack forms, or one box front when it lists no `packs.json`. Every product
/// named must be a product term of the vocabulary, on one form only.
pub(crate) fn open(
    dir: &Path,
    manifest: &Manifest,
    vocabulary: &Vocabulary,
) -> Result<PackCatalogue, BundleError> {
    if !manifest.files.iter().any(|entry| entry.path == PACKS_FILE) {
        return Ok(PackCatalogue::box_only());
    }
    let raw: RawCatalogue = crate::read_json(dir, PACKS_FILE)?;
    build(raw, vocabulary)
}

fn build(raw: RawCatalogue, vocabulary: &Vocabulary) -> Result<PackCatalogue, BundleError> {
    let products: HashMap<&str, &str> = vocabulary
        .terms
        .iter()
        .map(|term| (term.id.as_str(), term.group.as_str()))
        .collect();
    let mut forms = Vec::with_capacity(raw.packs.len());
    let mut by_product = HashMap::new();
    for (index, form) in raw.packs.into_iter().enumerate() {
        if forms.iter().any(|known: &PackForm| known.id == form.id) {
            return Err(invalid(format!("pack form '{}' is listed twice", form.id)));
        }
        let size = PanelSize::try_from((form.width, form.height))
            .map_err(|error| invalid(format!("pack form '{}': {error}", form.id)))?;
        for product in form.products {
            if products.get(product.as_str()) != Some(&"product") {
                return Err(invalid(format!(
                    "'{product}' (pack form '{}') is not a product term of the vocabulary",
                    form.id
                )));
            }
            if by_product.insert(product.clone(), index).is_some() {
                return Err(invalid(format!("'{product}' is on two pack forms")));
            }
        }
        forms.push(PackForm {
            id: form.id,
            name: form.name,
            name_zh: form.name_zh,
            size,
        });
    }
    let default = forms
        .iter()
        .position(|form| form.id == raw.default)
        .ok_or_else(|| invalid(format!("the default form '{}' is not listed", raw.default)))?;
    Ok(PackCatalogue {
        forms,
        default,
        by_product,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::parse(
            r#"{"version":"1","terms":[
                {"index":0,"id":"product:tea","group":"product","en":["tea"],"zh":["茶"]},
                {"index":1,"id":"product:beer","group":"product","en":["beer"],"zh":["啤酒"]},
                {"index":2,"id":"mood:calm","group":"mood","en":["calm"],"zh":["平静"]}]}"#
                .as_bytes(),
        )
        .expect("test vocabulary parses")
    }

    fn raw(json: &str) -> RawCatalogue {
        serde_json::from_str(json).expect("test catalogue parses")
    }

    const TWO_FORMS: &str = r#"{"version":"1","default":"box","packs":[
        {"id":"box","name":"box","name_zh":"盒","width":720,"height":960,"products":["product:tea"]},
        {"id":"label","name":"label","name_zh":"瓶贴","width":960,"height":640,"products":["product:beer"]}]}"#;

    #[test]
    fn a_product_gets_its_form_and_anything_else_the_default() {
        let packs = build(raw(TWO_FORMS), &vocabulary()).expect("valid");
        assert_eq!(packs.for_product(Some("product:beer")).id, "label");
        assert_eq!(
            packs.for_product(Some("product:beer")).size,
            PanelSize::try_from((960, 640)).expect("in range")
        );
        assert_eq!(packs.for_product(Some("product:tea")).id, "box");
        assert_eq!(packs.for_product(Some("product:unknown")).id, "box");
        assert_eq!(packs.for_product(None).id, "box");
    }

    #[test]
    fn a_bundle_without_forms_draws_every_product_on_a_box_front() {
        let packs = PackCatalogue::box_only();
        assert_eq!(
            packs.for_product(Some("product:beer")).size,
            PanelSize::BOX_FRONT
        );
        assert_eq!(packs.forms().len(), 1);
    }

    #[test]
    fn bad_catalogues_are_refused_with_the_reason() {
        let cases = [
            (
                TWO_FORMS.replace("\"width\":960", "\"width\":4096"),
                "outside",
            ),
            (
                TWO_FORMS.replace("product:beer", "mood:calm"),
                "not a product term",
            ),
            (
                TWO_FORMS.replace("product:beer", "product:tea"),
                "two pack forms",
            ),
            (
                TWO_FORMS.replace("\"id\":\"label\"", "\"id\":\"box\""),
                "listed twice",
            ),
            (
                TWO_FORMS.replace("\"default\":\"box\"", "\"default\":\"tin\""),
                "not listed",
            ),
        ];
        for (json, reason) in cases {
            let error = build(raw(&json), &vocabulary()).expect_err(reason);
            assert!(
                error.to_string().contains(reason),
                "{error} lacks '{reason}'"
            );
        }
    }
}
