//! Procedural PNG art: character portraits and prompt-seeded artwork, rendered row by row with
//! progress callbacks. Everything derives from a seed, so the same request gives the same image.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use crate::util::Rng;

type Color = [f32; 3];
type P = (f32, f32);

/// How often a renderer reports progress, in parts of the image.
const PROGRESS_STEPS: u32 = 8;

/// An artwork style for media jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Domain-warped fractal noise with stars.
    Nebula,
    /// Interference of concentric waves.
    Rings,
    /// Voronoi cells with dark borders.
    Mosaic,
}

impl Style {
    /// All styles, for validation messages.
    pub const ALL: [(&'static str, Style); 3] = [
        ("nebula", Style::Nebula),
        ("rings", Style::Rings),
        ("mosaic", Style::Mosaic),
    ];

    /// Parses a style name (case-insensitive).
    pub fn parse(name: &str) -> Option<Style> {
        Style::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, s)| *s)
    }

    /// The style's name.
    pub fn name(self) -> &'static str {
        match self {
            Style::Nebula => "nebula",
            Style::Rings => "rings",
            Style::Mosaic => "mosaic",
        }
    }

    /// The style a seed picks when the request names none.
    pub fn from_seed(seed: u64) -> Style {
        Style::ALL[(seed % 3) as usize].1
    }
}

/// Encodes 8-bit RGB pixels as PNG.
pub fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(rgb, width, height, ExtendedColorType::Rgb8)
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(out)
}

fn mix(a: Color, b: Color, t: f32) -> Color {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(c: Color, k: f32) -> Color {
    [c[0] * k, c[1] * k, c[2] * k]
}

fn hsv(h: f32, s: f32, v: f32) -> Color {
    let h = h.rem_euclid(1.0) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as u32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

fn to_byte(x: f32) -> u8 {
    (x.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

fn hash2(x: i32, y: i32, seed: u64) -> f32 {
    let mut h = seed ^ (x as u32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= (y as u32 as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    (h >> 40) as f32 / (1u64 << 24) as f32
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

fn value_noise(p: P, seed: u64) -> f32 {
    let (ix, iy) = (p.0.floor(), p.1.floor());
    let (fx, fy) = (smooth(p.0 - ix), smooth(p.1 - iy));
    let (ix, iy) = (ix as i32, iy as i32);
    let a = hash2(ix, iy, seed);
    let b = hash2(ix + 1, iy, seed);
    let c = hash2(ix, iy + 1, seed);
    let d = hash2(ix + 1, iy + 1, seed);
    let top = a + (b - a) * fx;
    let bottom = c + (d - c) * fx;
    top + (bottom - top) * fy
}

fn fbm(p: P, seed: u64) -> f32 {
    let (mut sum, mut amp, mut norm) = (0.0, 0.5, 0.0);
    let mut q = p;
    for octave in 0..5u64 {
        sum += amp * value_noise(q, seed.wrapping_add(octave));
        norm += amp;
        amp *= 0.5;
        q = (q.0 * 2.03 + 1.7, q.1 * 2.03 - 0.9);
    }
    sum / norm
}

/// Renders `width × height` pixels with `shade(x, y) -> rgb` (coordinates in `[0, 1)`),
/// reporting progress in parts, then encodes PNG.
fn render(
    width: u32,
    height: u32,
    mut shade: impl FnMut(f32, f32) -> Color,
    progress: &mut dyn FnMut(f32),
) -> Result<Vec<u8>, String> {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let band = height.div_ceil(PROGRESS_STEPS).max(1);
    for y in 0..height {
        for x in 0..width {
            let c = shade(
                (x as f32 + 0.5) / width as f32,
                (y as f32 + 0.5) / height as f32,
            );
            rgb.extend(c.iter().map(|v| to_byte(*v)));
        }
        if (y + 1) % band == 0 || y + 1 == height {
            progress((y + 1) as f32 / height as f32);
        }
    }
    encode_png(width, height, &rgb)
}

/// A palette of four colours around a seeded hue; `at(t)` interpolates along it.
struct Palette([Color; 4]);

impl Palette {
    fn new(rng: &mut Rng) -> Palette {
        let h = rng.unit();
        let spread = 0.08 + rng.unit() * 0.25;
        Palette([
            hsv(h, 0.7, 0.08),
            hsv(h + spread, 0.75, 0.45),
            hsv(h + 2.0 * spread, 0.6, 0.85),
            hsv(h + 3.0 * spread, 0.25, 1.0),
        ])
    }

    fn at(&self, t: f32) -> Color {
        let t = t.clamp(0.0, 1.0) * 3.0;
        let i = (t.floor() as usize).min(2);
        mix(self.0[i], self.0[i + 1], t - i as f32)
    }
}

/// Renders prompt-seeded artwork in `style`.
pub fn artwork(
    seed: u64,
    style: Style,
    width: u32,
    height: u32,
    progress: &mut dyn FnMut(f32),
) -> Result<Vec<u8>, String> {
    let mut rng = Rng::new(seed);
    let pal = Palette::new(&mut rng);
    let aspect = width as f32 / height as f32;
    match style {
        Style::Nebula => {
            let zoom = 2.5 + rng.unit() * 2.0;
            let (ox, oy) = (rng.unit() * 100.0, rng.unit() * 100.0);
            render(
                width,
                height,
                |x, y| {
                    let p = (x * zoom * aspect + ox, y * zoom + oy);
                    let q = (fbm(p, seed), fbm((p.0 + 5.2, p.1 + 1.3), seed ^ 1));
                    let v = fbm((p.0 + 4.0 * q.0, p.1 + 4.0 * q.1), seed ^ 2);
                    let mut c = pal.at(v * v * 1.6);
                    // Stars: one candidate per cell, shown in a few cells.
                    let (cx, cy) = ((x * 40.0 * aspect).floor(), (y * 40.0).floor());
                    let h = hash2(cx as i32, cy as i32, seed ^ 3);
                    if h < 0.12 {
                        let sx = cx + hash2(cx as i32, cy as i32, seed ^ 4);
                        let sy = cy + hash2(cx as i32, cy as i32, seed ^ 5);
                        let d2 = (x * 40.0 * aspect - sx).powi(2) + (y * 40.0 - sy).powi(2);
                        let glow = (-d2 * 60.0).exp() * (1.0 - h * 6.0);
                        c = mix(c, [1.0, 1.0, 1.0], glow.clamp(0.0, 1.0));
                    }
                    c
                },
                progress,
            )
        }
        Style::Rings => {
            let centers: Vec<(P, f32, f32)> = (0..4)
                .map(|_| {
                    (
                        (rng.unit() * aspect, rng.unit()),
                        20.0 + rng.unit() * 40.0,
                        rng.unit() * 6.3,
                    )
                })
                .collect();
            render(
                width,
                height,
                |x, y| {
                    let x = x * aspect;
                    let v: f32 = centers
                        .iter()
                        .map(|((cx, cy), f, ph)| {
                            (((x - cx).powi(2) + (y - cy).powi(2)).sqrt() * f + ph).sin()
                        })
                        .sum::<f32>()
                        / centers.len() as f32;
                    pal.at(0.5 + 0.5 * v)
                },
                progress,
            )
        }
        Style::Mosaic => {
            let cells: Vec<(P, Color)> = (0..28)
                .map(|_| {
                    let c = pal.at(0.25 + rng.unit() * 0.75);
                    ((rng.unit() * aspect, rng.unit()), c)
                })
                .collect();
            render(
                width,
                height,
                |x, y| {
                    let x = x * aspect;
                    let (mut d1, mut d2, mut col) = (f32::MAX, f32::MAX, [0.0; 3]);
                    for ((cx, cy), c) in &cells {
                        let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                        if d < d1 {
                            d2 = d1;
                            d1 = d;
                            col = *c;
                        } else if d < d2 {
                            d2 = d;
                        }
                    }
                    let edge = ((d2 - d1) * 250.0).clamp(0.0, 1.0);
                    let lit = scale(col, 1.15 - d1 * 1.2);
                    mix(pal.0[0], lit, edge)
                },
                progress,
            )
        }
    }
}

// ---- portraits -------------------------------------------------------------------------------

enum Shape {
    Ellipse(P, P),
    Triangle(P, P, P),
    Capsule(P, P, f32),
    /// The part of the first shape above `y` (a helmet, a hat brim).
    Above(Box<Shape>, f32),
}

fn len(p: P) -> f32 {
    (p.0 * p.0 + p.1 * p.1).sqrt()
}

impl Shape {
    /// Signed distance (negative inside), and a 0..1 "radius" for shading.
    fn dist(&self, p: P) -> (f32, f32) {
        match self {
            Shape::Ellipse(c, r) => {
                let q = ((p.0 - c.0) / r.0, (p.1 - c.1) / r.1);
                let l = len(q);
                ((l - 1.0) * r.0.min(r.1), l.min(1.0))
            }
            Shape::Capsule(a, b, r) => {
                let pa = (p.0 - a.0, p.1 - a.1);
                let ba = (b.0 - a.0, b.1 - a.1);
                let h = ((pa.0 * ba.0 + pa.1 * ba.1) / (ba.0 * ba.0 + ba.1 * ba.1)).clamp(0.0, 1.0);
                let d = len((pa.0 - ba.0 * h, pa.1 - ba.1 * h));
                (d - r, (d / r).min(1.0))
            }
            Shape::Triangle(a, b, c) => {
                let d = tri_dist(p, *a, *b, *c);
                (d, 0.3)
            }
            Shape::Above(s, y) => {
                let (d, r) = s.dist(p);
                (d.max(p.1 - y), r)
            }
        }
    }
}

/// Signed distance to a triangle (after Inigo Quilez).
fn tri_dist(p: P, p0: P, p1: P, p2: P) -> f32 {
    let e = [
        (p1.0 - p0.0, p1.1 - p0.1),
        (p2.0 - p1.0, p2.1 - p1.1),
        (p0.0 - p2.0, p0.1 - p2.1),
    ];
    let v = [
        (p.0 - p0.0, p.1 - p0.1),
        (p.0 - p1.0, p.1 - p1.1),
        (p.0 - p2.0, p.1 - p2.1),
    ];
    let s = (e[0].0 * e[2].1 - e[0].1 * e[2].0).signum();
    let mut best = (f32::MAX, f32::MAX);
    for i in 0..3 {
        let t = ((v[i].0 * e[i].0 + v[i].1 * e[i].1) / (e[i].0 * e[i].0 + e[i].1 * e[i].1))
            .clamp(0.0, 1.0);
        let pq = (v[i].0 - e[i].0 * t, v[i].1 - e[i].1 * t);
        let d2 = pq.0 * pq.0 + pq.1 * pq.1;
        let side = s * (v[i].0 * e[i].1 - v[i].1 * e[i].0);
        best = (best.0.min(d2), best.1.min(side));
    }
    -best.0.sqrt() * best.1.signum()
}

struct Layer {
    shape: Shape,
    color: Color,
    shade: bool,
}

fn layer(shape: Shape, color: Color, shade: bool) -> Layer {
    Layer {
        shape,
        color,
        shade,
    }
}

fn skin(race: &str, rng: &mut Rng) -> Color {
    let base: Color = match race {
        "elf" => [0.94, 0.84, 0.74],
        "dwarf" => [0.80, 0.60, 0.46],
        "halfling" => [0.90, 0.72, 0.58],
        "orc" => [0.45, 0.62, 0.36],
        "gnome" => [0.93, 0.76, 0.66],
        "tiefling" => [0.74, 0.32, 0.32],
        _ => {
            let tones: [Color; 4] = [
                [0.95, 0.80, 0.68],
                [0.82, 0.62, 0.48],
                [0.60, 0.42, 0.30],
                [0.40, 0.27, 0.20],
            ];
            *rng.pick(&tones)
        }
    };
    scale(base, 0.94 + rng.unit() * 0.1)
}

fn cloth(class: &str) -> Color {
    match class {
        "fighter" => [0.55, 0.16, 0.14],
        "wizard" => [0.22, 0.20, 0.60],
        "rogue" => [0.18, 0.18, 0.22],
        "cleric" => [0.88, 0.84, 0.70],
        "ranger" => [0.20, 0.40, 0.22],
        "bard" => [0.62, 0.18, 0.48],
        "paladin" => [0.80, 0.66, 0.24],
        _ => [0.40, 0.32, 0.18],
    }
}

/// Renders a `size × size` portrait for a character of `class` and `race`, seeded by `seed`.
pub fn portrait(
    seed: u64,
    class: &str,
    race: &str,
    size: u32,
    progress: &mut dyn FnMut(f32),
) -> Result<Vec<u8>, String> {
    let mut rng = Rng::new(seed ^ 0x5eed_0fa2_7000);
    let bg_hue = rng.unit();
    let bg_top = hsv(bg_hue, 0.45, 0.42);
    let bg_bottom = hsv(bg_hue + 0.12, 0.65, 0.12);
    let skin = skin(race, &mut rng);
    let cloth = cloth(class);
    let hairs: [Color; 6] = [
        [0.08, 0.06, 0.05],
        [0.35, 0.20, 0.10],
        [0.85, 0.70, 0.35],
        [0.65, 0.25, 0.10],
        [0.90, 0.90, 0.88],
        [0.12, 0.14, 0.30],
    ];
    let hair = *rng.pick(&hairs);
    let eye = hsv(rng.unit(), 0.7, 0.55);
    let metal = [0.62, 0.64, 0.68];
    let (hx, hy) = (0.5, 0.46);
    let (rx, ry) = (0.15 + rng.unit() * 0.03, 0.19 + rng.unit() * 0.03);
    let eye_dx = rx * 0.42;
    let eye_y = hy - ry * 0.05;

    let mut layers: Vec<Layer> = Vec::new();
    // Hood or long hair behind the head.
    match class {
        "rogue" | "ranger" => layers.push(layer(
            Shape::Ellipse((hx, hy - 0.02), (rx * 1.55, ry * 1.45)),
            scale(cloth, 0.8),
            true,
        )),
        "wizard" | "paladin" | "fighter" => {}
        _ => layers.push(layer(
            Shape::Ellipse((hx, hy + 0.02), (rx * 1.3, ry * 1.3)),
            hair,
            true,
        )),
    }
    // Shoulders and neck.
    layers.push(layer(Shape::Ellipse((0.5, 1.08), (0.4, 0.34)), cloth, true));
    layers.push(layer(
        Shape::Capsule((0.5, hy + ry * 0.6), (0.5, 0.8), rx * 0.45),
        scale(skin, 0.85),
        false,
    ));
    // Ears.
    if race == "elf" {
        for s in [-1.0f32, 1.0] {
            layers.push(layer(
                Shape::Triangle(
                    (hx + s * rx * 0.9, hy - ry * 0.1),
                    (hx + s * rx * 0.9, hy + ry * 0.25),
                    (hx + s * rx * 1.75, hy - ry * 0.55),
                ),
                scale(skin, 0.92),
                false,
            ));
        }
    } else {
        for s in [-1.0f32, 1.0] {
            layers.push(layer(
                Shape::Ellipse((hx + s * rx * 0.98, hy + ry * 0.05), (rx * 0.16, ry * 0.2)),
                scale(skin, 0.9),
                true,
            ));
        }
    }
    // Head.
    layers.push(layer(Shape::Ellipse((hx, hy), (rx, ry)), skin, true));
    // Eyes, brows, mouth.
    for s in [-1.0f32, 1.0] {
        layers.push(layer(
            Shape::Ellipse((hx + s * eye_dx, eye_y), (rx * 0.2, ry * 0.1)),
            [0.96, 0.95, 0.92],
            false,
        ));
        layers.push(layer(
            Shape::Ellipse((hx + s * eye_dx, eye_y), (rx * 0.09, rx * 0.09)),
            eye,
            false,
        ));
        layers.push(layer(
            Shape::Capsule(
                (hx + s * eye_dx * 0.55, eye_y - ry * 0.2),
                (
                    hx + s * eye_dx * 1.45,
                    eye_y - ry * 0.24 - rng.unit() * 0.01,
                ),
                0.006,
            ),
            scale(hair, 0.8),
            false,
        ));
    }
    let mouth_w = rx * (0.25 + rng.unit() * 0.15);
    layers.push(layer(
        Shape::Capsule(
            (hx - mouth_w, hy + ry * 0.48),
            (hx + mouth_w, hy + ry * 0.48),
            0.006,
        ),
        [0.45, 0.15, 0.15],
        false,
    ));
    if race == "orc" {
        for s in [-1.0f32, 1.0] {
            layers.push(layer(
                Shape::Triangle(
                    (hx + s * mouth_w * 0.9, hy + ry * 0.5),
                    (hx + s * mouth_w * 0.5, hy + ry * 0.5),
                    (hx + s * mouth_w * 0.75, hy + ry * 0.3),
                ),
                [0.95, 0.93, 0.85],
                false,
            ));
        }
    }
    if race == "dwarf" {
        layers.push(layer(
            Shape::Above(
                Box::new(Shape::Ellipse((hx, hy + ry * 0.75), (rx * 0.85, ry * 0.6))),
                2.0,
            ),
            hair,
            true,
        ));
        layers.push(layer(
            Shape::Capsule(
                (hx - mouth_w, hy + ry * 0.45),
                (hx + mouth_w, hy + ry * 0.45),
                0.008,
            ),
            [0.35, 0.12, 0.12],
            false,
        ));
    }
    if race == "tiefling" {
        for s in [-1.0f32, 1.0] {
            layers.push(layer(
                Shape::Triangle(
                    (hx + s * rx * 0.35, hy - ry * 0.75),
                    (hx + s * rx * 0.75, hy - ry * 0.6),
                    (hx + s * rx * 1.05, hy - ry * 1.45),
                ),
                [0.20, 0.16, 0.18],
                true,
            ));
        }
    }
    // Headgear by class.
    match class {
        "wizard" => {
            layers.push(layer(
                Shape::Ellipse((hx, hy - ry * 0.72), (rx * 1.7, ry * 0.16)),
                scale(cloth, 0.8),
                true,
            ));
            layers.push(layer(
                Shape::Triangle(
                    (hx - rx * 1.0, hy - ry * 0.75),
                    (hx + rx * 1.0, hy - ry * 0.75),
                    (hx + rx * (0.3 + rng.unit() * 0.8), hy - ry * 2.3),
                ),
                cloth,
                true,
            ));
        }
        "fighter" | "paladin" => {
            let c = if class == "paladin" {
                [0.85, 0.72, 0.30]
            } else {
                metal
            };
            layers.push(layer(
                Shape::Above(
                    Box::new(Shape::Ellipse((hx, hy), (rx * 1.1, ry * 1.08))),
                    eye_y - ry * 0.3,
                ),
                c,
                true,
            ));
            layers.push(layer(
                Shape::Capsule((hx, eye_y - ry * 0.35), (hx, hy + ry * 0.2), rx * 0.07),
                scale(c, 0.85),
                false,
            ));
        }
        "rogue" | "ranger" => {}
        "bard" => {
            layers.push(layer(
                Shape::Above(
                    Box::new(Shape::Ellipse((hx, hy - ry * 0.55), (rx * 1.25, ry * 0.5))),
                    hy - ry * 0.55,
                ),
                cloth,
                true,
            ));
            layers.push(layer(
                Shape::Capsule(
                    (hx + rx * 0.6, hy - ry * 0.75),
                    (hx + rx * 1.6, hy - ry * 1.7),
                    0.012,
                ),
                [0.95, 0.85, 0.30],
                false,
            ));
        }
        _ => {
            // Hair on top, with a circlet for clerics and druids.
            layers.push(layer(
                Shape::Above(
                    Box::new(Shape::Ellipse((hx, hy - ry * 0.08), (rx * 1.06, ry * 1.0))),
                    hy - ry * 0.45,
                ),
                hair,
                true,
            ));
            if class == "cleric" || class == "druid" {
                let band = if class == "cleric" {
                    [0.92, 0.80, 0.35]
                } else {
                    [0.30, 0.55, 0.20]
                };
                layers.push(layer(
                    Shape::Capsule(
                        (hx - rx * 0.95, hy - ry * 0.5),
                        (hx + rx * 0.95, hy - ry * 0.5),
                        0.01,
                    ),
                    band,
                    false,
                ));
            }
        }
    }

    let size_f = size as f32;
    render(
        size,
        size,
        |x, y| {
            let g = (y + 0.15 * (x - 0.5).abs()).clamp(0.0, 1.0);
            let mut c = mix(bg_top, bg_bottom, g);
            let glow = (-((x - 0.5).powi(2) + (y - 0.35).powi(2)) * 6.0).exp();
            c = mix(c, scale(bg_top, 1.6), glow * 0.35);
            for l in &layers {
                let (d, r) = l.shape.dist((x, y));
                let cov = (0.5 - d * size_f).clamp(0.0, 1.0);
                if cov > 0.0 {
                    let col = if l.shade {
                        scale(l.color, 1.08 - 0.3 * r * r)
                    } else {
                        l.color
                    };
                    c = mix(c, col, cov);
                }
            }
            let grain = (hash2((x * size_f) as i32, (y * size_f) as i32, seed) - 0.5) * 0.035;
            let vignette = 1.0 - 0.35 * ((x - 0.5).powi(2) + (y - 0.5).powi(2));
            [
                (c[0] + grain) * vignette,
                (c[1] + grain) * vignette,
                (c[2] + grain) * vignette,
            ]
        },
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_are_deterministic_png() {
        let mut steps = Vec::new();
        let a = portrait(42, "wizard", "elf", 64, &mut |f| steps.push(f)).unwrap();
        let b = portrait(42, "wizard", "elf", 64, &mut |_| {}).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[1..4], b"PNG");
        assert_eq!(steps.len(), PROGRESS_STEPS as usize);
        assert_eq!(steps.last().copied(), Some(1.0));
        for style in Style::ALL {
            let img = artwork(7, style.1, 48, 32, &mut |_| {}).unwrap();
            assert_eq!(&img[1..4], b"PNG");
        }
        assert_ne!(
            portrait(1, "rogue", "orc", 32, &mut |_| {}).unwrap(),
            portrait(2, "rogue", "orc", 32, &mut |_| {}).unwrap()
        );
    }
}
