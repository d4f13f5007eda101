#!/usr/bin/env bash
# Draws Conclave's icon (an envelope sealed with a keyhole) with ImageMagick 6
# and writes the sizes the app, the .deb and the desktop file use.
set -euo pipefail
cd "$(dirname "$0")"
convert -size 512x512 xc:none \
  -fill '#2d2a6e' -draw 'roundrectangle 16,16 496,496 104,104' \
  -fill none -stroke '#f4f1ff' -strokewidth 26 -draw 'roundrectangle 96,150 416,362 24,24' \
  -draw 'stroke-linejoin round stroke-linecap round polyline 110,166 256,280 402,166' \
  -stroke none -fill '#f2b544' -draw 'circle 366,352 366,282' \
  -fill '#2d2a6e' -draw 'circle 366,336 366,318' -draw 'polygon 354,340 378,340 386,392 346,392' \
  -depth 8 PNG32:icon.png
convert icon.png -resize 32x32 -depth 8 PNG32:32x32.png
convert icon.png -resize 128x128 -depth 8 PNG32:128x128.png
convert icon.png -resize 256x256 -depth 8 PNG32:128x128@2x.png
