#include "textflag.h"

// AVX2 kernels for Hue: Pillow's rgb2hsv and hsv2rgb on 8 pixels at a time, in float32 lanes
// where a float32 operation gives the reference's bytes over its whole input domain (checked
// exhaustively by the tests) and in float64 lanes where the reference rounds a double sum once.
//
// Registers kept across a loop: Y13 = float32 1.0, Y14 = 0, Y15 = the hue shift (int32 lanes).

// A group is 8 pixels, 24 bytes; loading reads 4 bytes past it, so callers leave the pixels
// of the last 28 bytes to Go.

// LOAD8 splits the 8 RGB pixels at SI into int32 lanes: Y1 = byte 0, Y2 = byte 1, Y3 = byte 2.
#define LOAD8 \
	VMOVDQU     (SI), X0; \
	VINSERTI128 $1, 12(SI), Y0, Y0; \
	VPSHUFB     hueShuf0<>(SB), Y0, Y1; \
	VPSHUFB     hueShuf1<>(SB), Y0, Y2; \
	VPSHUFB     hueShuf2<>(SB), Y0, Y3

// STORE8 writes the low 3 bytes of Y0's int32 lanes as 8 pixels at SI. It writes no byte
// past the group: a store that the next group's load overlaps would stall that load.
#define STORE8 \
	VPSHUFB      huePack<>(SB), Y0, Y0; \
	VEXTRACTI128 $1, Y0, X1; \
	VMOVDQU      X0, (SI); \
	VMOVQ        X1, 12(SI); \
	VPEXTRD      $2, X1, 20(SI)

// RGB2HSV: Y1, Y2, Y3 = R, G, B to Y3 = H, Y11 = S, Y4 = V (int32 lanes); H is undefined
// for grey pixels (S = 0).
// V = max and cr = max - min. With d the distances below the max, the reference's raw hue is
// k + a - b with (k, a, b) = (0, db, dg)/cr when R is the max, (2, dr, db)/cr when G is, else
// (4, dg, dr)/cr (R before G before B on ties), a and b float32 quotients, the sum exact and
// rounded to float32 once. One of a and b is the min's distance, so it is exactly 1 and the
// sum is one float32 addition: (k+1) - b when a = 1, (k-1) + a otherwise. fmod(hf/6 + 1, 1)
// is hf/6 in float32, plus 1 when hf < 0 (exact for every hf that occurs; the tests cover
// the whole RGB cube). H = trunc(that * 255); S = trunc(cr/max * 255).
#define RGB2HSV \
	VPMAXUD     Y2, Y1, Y4; \
	VPMAXUD     Y3, Y4, Y4; \
	VPMINUD     Y2, Y1, Y5; \
	VPMINUD     Y3, Y5, Y5; \
	VPSUBD      Y5, Y4, Y5; \
	VPSUBD      Y1, Y4, Y1; \
	VPSUBD      Y2, Y4, Y2; \
	VPSUBD      Y3, Y4, Y3; \
	VPCMPEQD    Y14, Y1, Y6; \
	VPCMPEQD    Y14, Y2, Y7; \
	VPBLENDVB   Y7, Y1, Y2, Y8; \
	VPBLENDVB   Y6, Y3, Y8, Y8; \
	VPBLENDVB   Y7, Y3, Y1, Y9; \
	VPBLENDVB   Y6, Y2, Y9, Y9; \
	VMOVDQU     hueC3<>(SB), Y10; \
	VPBLENDVB   Y7, hueC1<>(SB), Y10, Y10; \
	VPBLENDVB   Y6, hueCm1<>(SB), Y10, Y10; \
	VPCMPEQD    Y5, Y8, Y6; \
	VPSUBD      Y9, Y14, Y9; \
	VPBLENDVB   Y6, Y9, Y8, Y8; \
	VPSLLD      $1, Y6, Y6; \
	VPSUBD      Y6, Y10, Y10; \
	VCVTDQ2PS   Y10, Y10; \
	VPMAXUD     hueC1<>(SB), Y5, Y1; \
	VCVTDQ2PS   Y1, Y1; \
	VCVTDQ2PS   Y8, Y8; \
	VDIVPS      Y1, Y8, Y8; \
	VADDPS      Y8, Y10, Y12; \
	VDIVPS      hueF6<>(SB), Y12, Y0; \
	VCMPPS      $1, Y14, Y12, Y12; \
	VANDPS      hueF1<>(SB), Y12, Y12; \
	VADDPS      Y12, Y0, Y0; \
	VMULPS      hueF255<>(SB), Y0, Y0; \
	VCVTTPS2DQ  Y0, Y3; \
	VPMAXUD     hueC1<>(SB), Y4, Y1; \
	VCVTDQ2PS   Y1, Y1; \
	VCVTDQ2PS   Y5, Y11; \
	VDIVPS      Y1, Y11, Y11; \
	VMULPS      hueF255<>(SB), Y11, Y11; \
	VCVTTPS2DQ  Y11, Y11

// HSV2RGB: Y3, Y11, Y4 = H, S, V (int32 lanes) to Y0 = R | G<<8 | B<<16, with Y15 added to H.
// With i = floor(6h/255), f = (6h - 255i)/255 and fs = s/255 (float32 divisions give the
// reference's float32 values for every h and s), p, q and t are computed in float32 as
// trunc(v*(1 - fs) + 0.5), trunc(v*(1 - fs*f) + 0.5) and trunc(v*(1 - fs*(1 - f)) + 0.5):
// these give the reference's bytes (float64 products, round half away from zero) for every
// (h, s, v), which TestHSVToRGBAVX2MatchesGo checks exhaustively.
#define HSV2RGB \
	VPADDD      Y15, Y3, Y3; \
	VPAND       hueC255<>(SB), Y3, Y3; \
	VPMULLD     hueC1542<>(SB), Y3, Y6; \
	VPADDD      hueC257<>(SB), Y6, Y6; \
	VPSRLD      $16, Y6, Y6; \
	VPMULLD     hueC6<>(SB), Y3, Y7; \
	VPMULLD     hueC255<>(SB), Y6, Y8; \
	VPSUBD      Y8, Y7, Y7; \
	VCVTDQ2PS   Y7, Y7; \
	VDIVPS      hueF255<>(SB), Y7, Y7; \
	VCVTDQ2PS   Y11, Y8; \
	VDIVPS      hueF255<>(SB), Y8, Y8; \
	VCVTDQ2PS   Y4, Y10; \
	VSUBPS      Y8, Y13, Y5; \
	VMULPS      Y10, Y5, Y5; \
	VADDPS      hueFHalf<>(SB), Y5, Y5; \
	VCVTTPS2DQ  Y5, Y0; \
	VMULPS      Y7, Y8, Y9; \
	VSUBPS      Y9, Y13, Y9; \
	VMULPS      Y10, Y9, Y9; \
	VADDPS      hueFHalf<>(SB), Y9, Y9; \
	VCVTTPS2DQ  Y9, Y1; \
	VSUBPS      Y7, Y13, Y7; \
	VMULPS      Y8, Y7, Y7; \
	VSUBPS      Y7, Y13, Y7; \
	VMULPS      Y10, Y7, Y7; \
	VADDPS      hueFHalf<>(SB), Y7, Y7; \
	VCVTTPS2DQ  Y7, Y2; \
	VPSLLD      $8, Y0, Y0; \
	VPOR        Y0, Y4, Y4; \
	VPSLLD      $16, Y1, Y1; \
	VPOR        Y1, Y4, Y4; \
	VPSLLD      $24, Y2, Y2; \
	VPOR        Y2, Y4, Y4; \
	VPERMD      hueSector<>(SB), Y6, Y6; \
	VPADDB      hueLaneOff<>(SB), Y6, Y6; \
	VPSHUFB     Y6, Y4, Y0

#define SETUP \
	VMOVUPS      hueF1<>(SB), Y13; \
	VPXOR        Y14, Y14, Y14; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

// func hueAVX2(pix *byte, groups int, shift uint32)
TEXT ·hueAVX2(SB), NOSPLIT, $0-20
	MOVQ pix+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVL shift+16(FP), AX
	SETUP
	TESTQ CX, CX
	JZ    hdone

hloop:
	LOAD8
	RGB2HSV
	HSV2RGB
	STORE8
	ADDQ $24, SI
	DECQ CX
	JNZ  hloop

hdone:
	VZEROUPPER
	RET

// func rgbToHSVAVX2(pix *byte, groups int)
// Rewrites each pixel as H, S, V (for the tests).
TEXT ·rgbToHSVAVX2(SB), NOSPLIT, $0-16
	MOVQ pix+0(FP), SI
	MOVQ groups+8(FP), CX
	XORL AX, AX
	SETUP
	TESTQ CX, CX
	JZ    rdone

rloop:
	LOAD8
	RGB2HSV
	VPCMPEQD Y14, Y5, Y6
	VPANDN   Y3, Y6, Y3
	VPSLLD $8, Y11, Y11
	VPSLLD $16, Y4, Y4
	VPOR   Y11, Y3, Y0
	VPOR   Y4, Y0, Y0
	STORE8
	ADDQ $24, SI
	DECQ CX
	JNZ  rloop

rdone:
	VZEROUPPER
	RET

// func hsvToRGBAVX2(pix *byte, groups int, shift uint32)
// Rewrites each H, S, V pixel as R, G, B with shift added to H (for the tests).
TEXT ·hsvToRGBAVX2(SB), NOSPLIT, $0-20
	MOVQ pix+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVL shift+16(FP), AX
	SETUP
	TESTQ CX, CX
	JZ    sdone

sloop:
	LOAD8
	VMOVDQU Y3, Y4
	VMOVDQU Y2, Y11
	VMOVDQU Y1, Y3
	HSV2RGB
	STORE8
	ADDQ $24, SI
	DECQ CX
	JNZ  sloop

sdone:
	VZEROUPPER
	RET

#define BCAST32(name, v) \
	DATA name+0(SB)/4, v; \
	DATA name+4(SB)/4, v; \
	DATA name+8(SB)/4, v; \
	DATA name+12(SB)/4, v; \
	DATA name+16(SB)/4, v; \
	DATA name+20(SB)/4, v; \
	DATA name+24(SB)/4, v; \
	DATA name+28(SB)/4, v; \
	GLOBL name(SB), RODATA|NOPTR, $32

#define LANES(name, lo, hi) \
	DATA name+0(SB)/8, lo; \
	DATA name+8(SB)/8, hi; \
	DATA name+16(SB)/8, lo; \
	DATA name+24(SB)/8, hi; \
	GLOBL name(SB), RODATA|NOPTR, $32

// Byte k of 4 pixels to int32 lanes, in each 128-bit lane.
LANES(hueShuf0<>, $0x8080800380808000, $0x8080800980808006)
LANES(hueShuf1<>, $0x8080800480808001, $0x8080800a80808007)
LANES(hueShuf2<>, $0x8080800580808002, $0x8080800b80808008)
// The low 3 bytes of 4 int32 lanes packed into 12 bytes.
LANES(huePack<>, $0x0908060504020100, $0x808080800e0d0c0a)
// Byte offset of each int32 lane within its 128-bit lane.
LANES(hueLaneOff<>, $0x0404040400000000, $0x0c0c0c0c08080808)

BCAST32(hueC1<>, $1)
BCAST32(hueC3<>, $3)
BCAST32(hueC6<>, $6)
BCAST32(hueCm1<>, $0xffffffff)
BCAST32(hueC255<>, $255)
BCAST32(hueC257<>, $257)
BCAST32(hueC1542<>, $1542)
BCAST32(hueF1<>, $0x3f800000)
BCAST32(hueF2<>, $0x40000000)
BCAST32(hueF4<>, $0x40800000)
BCAST32(hueF6<>, $0x40c00000)
BCAST32(hueF255<>, $0x437f0000)
BCAST32(hueFHalf<>, $0x3f000000)

// Per hsv2rgb sector, the bytes of v | p<<8 | q<<16 | t<<24 that give R, G, B:
// (v,t,p), (q,v,p), (p,v,t), (p,q,v), (t,p,v), (v,p,q); H = 255 gives i = 6, sector 0 again.
DATA hueSector<>+0(SB)/4, $0x80010300
DATA hueSector<>+4(SB)/4, $0x80010002
DATA hueSector<>+8(SB)/4, $0x80030001
DATA hueSector<>+12(SB)/4, $0x80000201
DATA hueSector<>+16(SB)/4, $0x80000103
DATA hueSector<>+20(SB)/4, $0x80020100
DATA hueSector<>+24(SB)/4, $0x80010300
DATA hueSector<>+28(SB)/4, $0x80808080
GLOBL hueSector<>(SB), RODATA|NOPTR, $32
