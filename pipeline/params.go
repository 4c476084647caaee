package pipeline

// ViewParams records every random choice that made one view, in the JSON schema of the
// augmentation parity vectors: replaying a ViewParams on the same decoded image gives the same
// pixels.
type ViewParams struct {
	Crop      Crop     `json:"crop"`
	Size      [2]int   `json:"size"` // [height, width] of the output view
	Jitter    *Jitter  `json:"jitter"`
	Grayscale bool     `json:"grayscale"`
	BlurSigma *float64 `json:"blur_sigma"`
	Flip      bool     `json:"flip"`
	// Solarize is BYOL's solarization (threshold 128); absent from MoCo views.
	Solarize bool `json:"solarize,omitempty"`
}

// Crop is a box in input pixels: RandomResizedCrop's (i, j, h, w).
type Crop struct {
	Top    int `json:"top"`
	Left   int `json:"left"`
	Height int `json:"height"`
	Width  int `json:"width"`
}

// Jitter holds color-jitter factors and the order the four ops ran in.
type Jitter struct {
	Order      []string `json:"order"` // names among brightness, contrast, saturation, hue
	Brightness float64  `json:"brightness"`
	Contrast   float64  `json:"contrast"`
	Saturation float64  `json:"saturation"`
	Hue        float64  `json:"hue"` // the hue shift, in [-0.5, 0.5] of a turn
}
