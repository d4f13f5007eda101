//! Reading QR codes back, the way a phone would: from the half blocks a
//! terminal shows, and from a screenshot of the app (`rqrr`).

/// Decodes every QR code in a greyscale image (`pixel(x, y)`, 0 is black).
fn decode_grey(w: usize, h: usize, pixel: impl FnMut(usize, usize) -> u8) -> Vec<String> {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, pixel);
    img.detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect()
}

/// Decodes a QR code drawn with Unicode half blocks, two module rows a
/// line, for a dark terminal: a block (or its half) is a light module.
/// Each module becomes an 8×8 square of pixels.
pub fn decode_terminal(text: &str) -> Option<String> {
    const SCALE: usize = 8;
    let lines: Vec<Vec<char>> = text
        .lines()
        .filter(|l| l.chars().any(|c| "█▀▄".contains(c)))
        .map(|l| l.chars().collect())
        .collect();
    let width = lines.iter().map(Vec::len).max()?;
    let height = lines.len() * 2;
    let light = |x: usize, y: usize| -> bool {
        let c = lines[y / 2].get(x).copied().unwrap_or(' ');
        matches!((c, y % 2), ('█', _) | ('▀', 0) | ('▄', 1))
    };
    decode_grey(width * SCALE, height * SCALE, |x, y| {
        if light(x / SCALE, y / SCALE) {
            255
        } else {
            0
        }
    })
    .into_iter()
    .next()
}

/// Decodes every QR code in a PNG (a WebDriver screenshot, say).
pub fn decode_png(png: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG's size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        _ => 4,
    };
    let (w, h) = (info.width as usize, info.height as usize);
    decode_grey(w, h, |x, y| {
        let p = &buf[y * info.line_size + x * channels..];
        if channels < 3 {
            p[0]
        } else {
            ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8
        }
    })
}

/// Decodes the QR code of an SVG made of unit squares (`M x y h1v1h-1z`
/// in one path, on a `viewBox="0 0 N N"`), as the app draws it.
pub fn decode_svg(svg: &str) -> Option<String> {
    const SCALE: usize = 8;
    let view = svg.split("viewBox=\"0 0 ").nth(1)?;
    let side: usize = view.split(' ').next()?.parse().ok()?;
    let mut dark = vec![false; side * side];
    let path = svg.split(" d=\"").nth(1)?.split('"').next()?;
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let (x, rest) = square.split_once(' ')?;
        let y = rest.split('h').next()?;
        let (x, y): (usize, usize) = (x.parse().ok()?, y.parse().ok()?);
        *dark.get_mut(y * side + x)? = true;
    }
    decode_grey(side * SCALE, side * SCALE, |x, y| {
        if dark[(y / SCALE) * side + x / SCALE] {
            0
        } else {
            255
        }
    })
    .into_iter()
    .next()
}
