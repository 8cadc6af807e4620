"""Raw videos to X3D features: decoding and the clip clock, the X3D backbones, extraction of one or many
videos. Imports core, models and data."""
