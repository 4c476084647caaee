//go:build !cgo

package decode

// Without cgo there is no libjpeg-turbo: JPEGs go through image/jpeg.
var defaultJPEG = stdJPEG
