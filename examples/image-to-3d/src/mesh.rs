//! The real work: an image becomes a height-field mesh, written as binary glTF (`.glb`).
//!
//! 1. [`decode_luma`]: the upload is decoded (PNG or JPEG, with size limits against
//!    decompression bombs) and converted to luminance.
//! 2. [`HeightField::from_luma`]: the luminance is resampled to a grid of at most
//!    `max_grid`×`max_grid` points ([`grid_size`]), each a height in `0.0..=1.0`.
//! 3. [`Mesh::from_height_field`]: one vertex per grid point (x right, y up = brightness,
//!    z toward the viewer = down the image), two triangles per grid cell, smooth normals.
//! 4. [`Mesh::to_glb`]: a glTF 2.0 binary container, written by hand: the 12-byte header, a
//!    JSON chunk (scene, node, mesh, accessors, buffer views) and a BIN chunk with the positions
//!    (`f32` VEC3 with min/max), the normals (`f32` VEC3) and the indices (`u32`).
//!
//! A `w`×`h` image gives `gw * gh` vertices and `2 * (gw - 1) * (gh - 1)` triangles, where
//! `(gw, gh) = grid_size(w, h, max_grid)`.
//!
//! ```
//! use sse_example_image_to_3d::mesh::{grid_size, HeightField, Mesh};
//!
//! let img = image::GrayImage::from_fn(300, 150, |x, y| image::Luma([((x + y) % 256) as u8]));
//! let field = HeightField::from_luma(&img, 128);
//! assert_eq!((field.columns, field.rows), grid_size(300, 150, 128));
//! assert_eq!((field.columns, field.rows), (128, 64));
//! let mesh = Mesh::from_height_field(&field, 0.25);
//! assert_eq!(mesh.vertex_count(), 128 * 64);
//! assert_eq!(mesh.triangle_count(), 2 * 127 * 63);
//! let glb = mesh.to_glb("ramp");
//! assert_eq!(&glb[..4], b"glTF");
//! assert_eq!(glb.len() % 4, 0);
//! ```

use std::io::Cursor;

use image::imageops::FilterType;
use image::{GrayImage, ImageError, ImageReader, Limits};
use serde_json::json;

/// The default largest side of the vertex grid.
pub const DEFAULT_MAX_GRID: u32 = 128;

/// The default height of white above black, in the units of the mesh (its longer side is 1).
pub const DEFAULT_RELIEF: f32 = 0.2;

/// Why an upload could not become a model. The message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The file has no bytes.
    Empty,
    /// The bytes are not an image format this app reads.
    NotAnImage,
    /// An image format this app does not read (only PNG and JPEG).
    Unsupported(String),
    /// The image is wider or taller than the limit.
    TooLarge {
        /// The limit on either side, in pixels.
        max_side: u32,
    },
    /// The image is broken.
    Decode(String),
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::Empty => f.write_str("the file is empty"),
            ModelError::NotAnImage => f.write_str("not an image (expected PNG or JPEG)"),
            ModelError::Unsupported(format) => {
                write!(
                    f,
                    "unsupported image format {format} (expected PNG or JPEG)"
                )
            }
            ModelError::TooLarge { max_side } => {
                write!(f, "the image is larger than {max_side}×{max_side} pixels")
            }
            ModelError::Decode(e) => write!(f, "cannot decode the image: {e}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// The memory that decoding `bytes` takes, read from the image's header only: its pixels at
/// their own colour type and bit depth, plus the 8-bit luminance copy.
pub fn decode_cost(bytes: &[u8]) -> Result<u64, ModelError> {
    use image::ImageDecoder as _;
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ModelError::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ModelError::NotAnImage);
    }
    let decoder = reader
        .into_decoder()
        .map_err(|e| ModelError::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    Ok(decoder
        .total_bytes()
        .saturating_add(u64::from(w) * u64::from(h)))
}

/// Decodes a PNG or JPEG upload to luminance. Images wider or taller than `max_side` pixels
/// are refused before their pixels are decoded.
pub fn decode_luma(bytes: &[u8], max_side: u32) -> Result<GrayImage, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ModelError::Decode(e.to_string()))?;
    let Some(format) = reader.format() else {
        return Err(ModelError::NotAnImage);
    };
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(ModelError::Unsupported(format!("{format:?}")));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        ImageError::Limits(_) => ModelError::TooLarge { max_side },
        ImageError::Unsupported(u) => ModelError::Unsupported(u.to_string()),
        other => ModelError::Decode(other.to_string()),
    })?;
    Ok(img.to_luma8())
}

/// The vertex grid of a `width`×`height` image: scaled down (never up) so that its longer side
/// has at most `max_grid` points, keeping the aspect ratio; at least 2×2, so that there is at
/// least one cell.
///
/// ```
/// use sse_example_image_to_3d::mesh::grid_size;
/// assert_eq!(grid_size(40, 30, 128), (40, 30));
/// assert_eq!(grid_size(512, 256, 128), (128, 64));
/// assert_eq!(grid_size(1000, 3, 128), (128, 2));
/// assert_eq!(grid_size(1, 1, 128), (2, 2));
/// ```
pub fn grid_size(width: u32, height: u32, max_grid: u32) -> (u32, u32) {
    let max_grid = max_grid.max(2);
    let longest = width.max(height).max(1);
    if longest <= max_grid {
        return (width.max(2), height.max(2));
    }
    let scale = |side: u32| -> u32 {
        let longest = u64::from(longest);
        let v = (u64::from(side) * u64::from(max_grid) + longest / 2) / longest;
        u32::try_from(v).unwrap_or(max_grid).clamp(2, max_grid)
    };
    (scale(width), scale(height))
}

/// Heights on a grid, row by row from the image's top, each in `0.0..=1.0` (black to white).
#[derive(Debug, Clone, PartialEq)]
pub struct HeightField {
    /// Grid points per row.
    pub columns: u32,
    /// Rows of grid points.
    pub rows: u32,
    /// `columns * rows` heights, row-major.
    pub heights: Vec<f32>,
}

impl HeightField {
    /// Resamples `img` to the grid of [`grid_size`] (a triangle filter: each grid point averages
    /// the pixels around it).
    pub fn from_luma(img: &GrayImage, max_grid: u32) -> HeightField {
        let (columns, rows) = grid_size(img.width(), img.height(), max_grid);
        let resized;
        let small = if (columns, rows) == img.dimensions() {
            img
        } else {
            resized = image::imageops::resize(img, columns, rows, FilterType::Triangle);
            &resized
        };
        HeightField {
            columns,
            rows,
            heights: small.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect(),
        }
    }
}

/// An indexed triangle mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct Mesh {
    /// Vertex positions.
    pub positions: Vec<[f32; 3]>,
    /// Unit vertex normals, one per position.
    pub normals: Vec<[f32; 3]>,
    /// Three indices per triangle, counter-clockwise seen from the front (+y for a height field).
    pub indices: Vec<u32>,
}

impl Mesh {
    /// The height field as a surface: grid point `(i, j)` (column, row) is vertex
    /// `j * columns + i` at x from left to right and z from the image's top to its bottom (the
    /// longer side spans 1.0, centred on the origin) and y = height × `relief`. Each cell is
    /// two triangles facing up. A field with fewer than 2×2 points, or whose `heights` do not
    /// match its size, gives an empty mesh.
    pub fn from_height_field(field: &HeightField, relief: f32) -> Mesh {
        let cols = field.columns as usize;
        let rows = field.rows as usize;
        if cols < 2 || rows < 2 || field.heights.len() != cols * rows {
            return Mesh {
                positions: Vec::new(),
                normals: Vec::new(),
                indices: Vec::new(),
            };
        }
        let span = (cols.max(rows) - 1) as f32;
        let x_of = |i: usize| (i as f32 - (cols - 1) as f32 / 2.0) / span;
        let z_of = |j: usize| (j as f32 - (rows - 1) as f32 / 2.0) / span;
        let y_of = |i: usize, j: usize| field.heights[j * cols + i] * relief;

        let mut positions = Vec::with_capacity(cols * rows);
        let mut normals = Vec::with_capacity(cols * rows);
        for j in 0..rows {
            for i in 0..cols {
                positions.push([x_of(i), y_of(i, j), z_of(j)]);
                // Central differences (one-sided at the border) of y = f(x, z); the normal of
                // such a surface is (-df/dx, 1, -df/dz), normalized.
                let (i0, i1) = (i.saturating_sub(1), (i + 1).min(cols - 1));
                let (j0, j1) = (j.saturating_sub(1), (j + 1).min(rows - 1));
                let dx = (y_of(i1, j) - y_of(i0, j)) / (x_of(i1) - x_of(i0));
                let dz = (y_of(i, j1) - y_of(i, j0)) / (z_of(j1) - z_of(j0));
                let len = (dx * dx + 1.0 + dz * dz).sqrt();
                normals.push([-dx / len, 1.0 / len, -dz / len]);
            }
        }
        let mut indices = Vec::with_capacity((cols - 1) * (rows - 1) * 6);
        for j in 0..rows - 1 {
            for i in 0..cols - 1 {
                let a = u32::try_from(j * cols + i).unwrap_or(u32::MAX);
                let b = a + 1;
                let c = a + field.columns;
                let d = c + 1;
                indices.extend_from_slice(&[a, c, b, b, c, d]);
            }
        }
        Mesh {
            positions,
            normals,
            indices,
        }
    }

    /// Number of vertices.
    pub fn vertex_count(&self) -> usize {
        self.positions.len()
    }

    /// Number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }

    /// The component-wise minimum and maximum of the positions (zeros for an empty mesh).
    pub fn bounds(&self) -> ([f32; 3], [f32; 3]) {
        let Some(first) = self.positions.first() else {
            return ([0.0; 3], [0.0; 3]);
        };
        let (mut min, mut max) = (*first, *first);
        for p in &self.positions {
            for k in 0..3 {
                min[k] = min[k].min(p[k]);
                max[k] = max[k].max(p[k]);
            }
        }
        (min, max)
    }

    /// The mesh as a binary glTF 2.0 file (`.glb`) with one scene, one node named `name` and one
    /// mesh of one triangle primitive.
    pub fn to_glb(&self, name: &str) -> Vec<u8> {
        const ARRAY_BUFFER: u32 = 34962;
        const ELEMENT_ARRAY_BUFFER: u32 = 34963;
        const FLOAT: u32 = 5126;
        const UNSIGNED_INT: u32 = 5125;
        const TRIANGLES: u32 = 4;

        let mut bin = Vec::with_capacity((self.positions.len() * 24) + self.indices.len() * 4);
        for p in &self.positions {
            for c in p {
                bin.extend_from_slice(&c.to_le_bytes());
            }
        }
        let normals_offset = bin.len();
        for n in &self.normals {
            for c in n {
                bin.extend_from_slice(&c.to_le_bytes());
            }
        }
        let indices_offset = bin.len();
        for i in &self.indices {
            bin.extend_from_slice(&i.to_le_bytes());
        }
        let (min, max) = self.bounds();
        let doc = json!({
            "asset": { "version": "2.0", "generator": "sse-example-image-to-3d" },
            "scene": 0,
            "scenes": [{ "nodes": [0] }],
            "nodes": [{ "mesh": 0, "name": name }],
            "meshes": [{
                "name": name,
                "primitives": [{
                    "attributes": { "POSITION": 0, "NORMAL": 1 },
                    "indices": 2,
                    "material": 0,
                    "mode": TRIANGLES,
                }],
            }],
            "materials": [{
                "name": "relief",
                "pbrMetallicRoughness": {
                    "baseColorFactor": [0.82, 0.84, 0.88, 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.9,
                },
                "doubleSided": true,
            }],
            "accessors": [
                {
                    "bufferView": 0, "componentType": FLOAT, "count": self.positions.len(),
                    "type": "VEC3", "min": min, "max": max,
                },
                {
                    "bufferView": 1, "componentType": FLOAT, "count": self.normals.len(),
                    "type": "VEC3",
                },
                {
                    "bufferView": 2, "componentType": UNSIGNED_INT, "count": self.indices.len(),
                    "type": "SCALAR",
                },
            ],
            "bufferViews": [
                { "buffer": 0, "byteOffset": 0, "byteLength": normals_offset, "target": ARRAY_BUFFER },
                {
                    "buffer": 0, "byteOffset": normals_offset,
                    "byteLength": indices_offset - normals_offset, "target": ARRAY_BUFFER,
                },
                {
                    "buffer": 0, "byteOffset": indices_offset,
                    "byteLength": bin.len() - indices_offset, "target": ELEMENT_ARRAY_BUFFER,
                },
            ],
            "buffers": [{ "byteLength": bin.len() }],
        });
        glb_container(doc.to_string().as_bytes(), &bin)
    }
}

/// Pads `len` up to a multiple of 4.
fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

fn le32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// The GLB container (glTF 2.0, section "Binary glTF Layout"): a 12-byte header (magic `glTF`,
/// version 2, total length), then the JSON chunk (padded with spaces) and the BIN chunk (padded
/// with zeros), each as length, type and data, every chunk 4-byte aligned.
fn glb_container(json: &[u8], bin: &[u8]) -> Vec<u8> {
    let json_len = padded(json.len());
    let bin_len = padded(bin.len());
    let total = 12 + 8 + json_len + 8 + bin_len;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&le32(total));
    out.extend_from_slice(&le32(json_len));
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(json);
    out.resize(20 + json_len, b' ');
    out.extend_from_slice(&le32(bin_len));
    out.extend_from_slice(b"BIN\0");
    out.extend_from_slice(bin);
    out.resize(total, 0);
    out
}

/// A finished model and what it was made from.
#[derive(Debug, Clone)]
pub struct Model {
    /// The `.glb` file.
    pub glb: Vec<u8>,
    /// The image's size in pixels.
    pub image_size: (u32, u32),
    /// The vertex grid (columns, rows).
    pub grid: (u32, u32),
    /// Vertices in the mesh.
    pub vertices: usize,
    /// Triangles in the mesh.
    pub triangles: usize,
}

/// All steps at once: decode, resample, mesh, write the `.glb`.
pub fn image_to_glb(
    bytes: &[u8],
    name: &str,
    max_side: u32,
    max_grid: u32,
    relief: f32,
) -> Result<Model, ModelError> {
    let luma = decode_luma(bytes, max_side)?;
    let field = HeightField::from_luma(&luma, max_grid);
    let mesh = Mesh::from_height_field(&field, relief);
    Ok(Model {
        glb: mesh.to_glb(name),
        image_size: luma.dimensions(),
        grid: (field.columns, field.rows),
        vertices: mesh.vertex_count(),
        triangles: mesh.triangle_count(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn container_layout() {
        let field = HeightField {
            columns: 3,
            rows: 2,
            heights: vec![0.0, 0.5, 1.0, 1.0, 0.5, 0.0],
        };
        let mesh = Mesh::from_height_field(&field, 1.0);
        assert_eq!(mesh.vertex_count(), 6);
        assert_eq!(mesh.indices, vec![0, 3, 1, 1, 3, 4, 1, 4, 2, 2, 4, 5]);
        let glb = mesh.to_glb("t");
        let total = u32::from_le_bytes(glb[8..12].try_into().unwrap()) as usize;
        assert_eq!(total, glb.len());
        let json_len = u32::from_le_bytes(glb[12..16].try_into().unwrap()) as usize;
        assert_eq!(&glb[16..20], b"JSON");
        let json: serde_json::Value = serde_json::from_slice(&glb[20..20 + json_len]).unwrap();
        assert_eq!(json["accessors"][0]["count"], 6);
        assert_eq!(json["accessors"][2]["count"], 12);
        let bin_at = 20 + json_len;
        let bin_len = u32::from_le_bytes(glb[bin_at..bin_at + 4].try_into().unwrap()) as usize;
        assert_eq!(&glb[bin_at + 4..bin_at + 8], b"BIN\0");
        assert_eq!(bin_len, 6 * 12 * 2 + 12 * 4);
        // Every normal faces up.
        assert!(mesh.normals.iter().all(|n| n[1] > 0.0));
    }

    #[test]
    fn not_an_image() {
        assert_eq!(decode_luma(b"", 100), Err(ModelError::Empty));
        assert_eq!(
            decode_luma(b"hello, this is text", 100),
            Err(ModelError::NotAnImage)
        );
    }
}
