#include "textflag.h"

// func firRowsSSE41(dst *byte, n int, rows **byte, k *[4]uint32, taps int, bias uint32, shift uint64)
// For i in steps of 8 below n: dst[i..i+7] = sat8((bias + sum_t rows[t][i..]*k[t]) >> shift).
TEXT ·firRowsSSE41(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ rows+16(FP), SI
	MOVQ k+24(FP), R8
	MOVQ taps+32(FP), R9
	MOVL bias+40(FP), AX
	MOVQ shift+48(FP), DX
	MOVQ DX, X7
	MOVQ AX, X6
	PSHUFD $0, X6, X6
	XORQ BX, BX

loop:
	CMPQ BX, CX
	JGE  done
	MOVOU X6, X0
	MOVOU X6, X3
	MOVQ  SI, R12
	MOVQ  R8, R13
	MOVQ  R9, R10

tap:
	MOVQ     (R12), R11
	PMOVZXBD (R11)(BX*1), X1
	PMOVZXBD 4(R11)(BX*1), X4
	MOVOU    (R13), X2
	PMULLD   X2, X1
	PMULLD   X2, X4
	PADDL    X1, X0
	PADDL    X4, X3
	ADDQ     $8, R12
	ADDQ     $16, R13
	DECQ     R10
	JNZ      tap

	PSRLL    X7, X0
	PSRLL    X7, X3
	PACKUSDW X3, X0
	PACKUSWB X0, X0
	MOVQ     X0, (DI)(BX*1)
	ADDQ     $8, BX
	JMP      loop

done:
	RET

// func resampleHSSE41(dst *byte, n int, src *byte, pos *int32, w *[4]int32, taps int)
// For x below n: the RGB pixel dst[3x..3x+2] = sat8((2^21 + sum_t src[3(pos[x]+t)..]*w[x*taps+t]) >> 22),
// computed on 4 lanes (the fourth is the next pixel's red and is overwritten next).
TEXT ·resampleHSSE41(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ n+8(FP), CX
	MOVQ src+16(FP), SI
	MOVQ pos+24(FP), R8
	MOVQ w+32(FP), R9
	MOVQ taps+40(FP), R10
	MOVQ $0x200000, AX
	MOVQ AX, X6
	PSHUFD $0, X6, X6
	MOVQ $22, DX
	MOVQ DX, X7
	XORQ BX, BX

xloop:
	CMPQ    BX, CX
	JGE     xdone
	MOVLQSX (R8)(BX*4), R11
	LEAQ    (R11)(R11*2), R11
	ADDQ    SI, R11
	MOVOU   X6, X0
	MOVQ    R10, R12

htap:
	PMOVZXBD (R11), X1
	MOVOU    (R9), X2
	PMULLD   X2, X1
	PADDL    X1, X0
	ADDQ     $3, R11
	ADDQ     $16, R9
	DECQ     R12
	JNZ      htap

	PSRLL    X7, X0
	PACKUSDW X0, X0
	PACKUSWB X0, X0
	MOVQ     X0, R13
	MOVL     R13, (DI)
	ADDQ     $3, DI
	INCQ     BX
	JMP      xloop

xdone:
	RET

// func blendSSE41(pix *byte, deg *byte, n int, d uint32, f float32)
// Pillow's Image.blend on n bytes (a multiple of 4), in place: pix[i] = sat8(trunc(D + f*(pix[i]-D)))
// in float32, where D is deg[i], or the constant d when deg is nil.
TEXT ·blendSSE41(SB), NOSPLIT, $0-32
	MOVQ   pix+0(FP), DI
	MOVQ   deg+8(FP), SI
	MOVQ   n+16(FP), CX
	MOVL   d+24(FP), AX
	MOVSS  f+28(FP), X5
	SHUFPS $0, X5, X5
	MOVQ   AX, X6
	PSHUFD $0, X6, X6   // D as int32 lanes
	CVTPL2PS X6, X7     // D as float32 lanes
	XORQ   BX, BX
	TESTQ  SI, SI
	JNZ    bimg

bconst:
	CMPQ      BX, CX
	JGE       bdone
	PMOVZXBD  (DI)(BX*1), X1
	PSUBL     X6, X1
	CVTPL2PS  X1, X1
	MULPS     X5, X1
	ADDPS     X7, X1
	CVTTPS2PL X1, X1
	PACKUSDW  X1, X1
	PACKUSWB  X1, X1
	MOVQ      X1, AX
	MOVL      AX, (DI)(BX*1)
	ADDQ      $4, BX
	JMP       bconst

bimg:
	CMPQ      BX, CX
	JGE       bdone
	PMOVZXBD  (DI)(BX*1), X1
	PMOVZXBD  (SI)(BX*1), X2
	PSUBL     X2, X1
	CVTPL2PS  X1, X1
	MULPS     X5, X1
	CVTPL2PS  X2, X2
	ADDPS     X2, X1
	CVTTPS2PL X1, X1
	PACKUSDW  X1, X1
	PACKUSWB  X1, X1
	MOVQ      X1, AX
	MOVL      AX, (DI)(BX*1)
	ADDQ      $4, BX
	JMP       bimg

bdone:
	RET

// Shuffles that pick R, G or B of 4 packed RGB pixels into zero-extended 32-bit lanes, the
// weights of Pillow's L, and the shuffle that repeats each lane's low byte 3 times.
DATA lumaR<>+0(SB)/8, $0x8080800380808000
DATA lumaR<>+8(SB)/8, $0x8080800980808006
GLOBL lumaR<>(SB), RODATA|NOPTR, $16
DATA lumaG<>+0(SB)/8, $0x8080800480808001
DATA lumaG<>+8(SB)/8, $0x8080800a80808007
GLOBL lumaG<>(SB), RODATA|NOPTR, $16
DATA lumaB<>+0(SB)/8, $0x8080800580808002
DATA lumaB<>+8(SB)/8, $0x8080800b80808008
GLOBL lumaB<>(SB), RODATA|NOPTR, $16
DATA lumaWR<>+0(SB)/8, $0x00004c8b00004c8b
DATA lumaWR<>+8(SB)/8, $0x00004c8b00004c8b
GLOBL lumaWR<>(SB), RODATA|NOPTR, $16
DATA lumaWG<>+0(SB)/8, $0x0000964600009646
DATA lumaWG<>+8(SB)/8, $0x0000964600009646
GLOBL lumaWG<>(SB), RODATA|NOPTR, $16
DATA lumaWB<>+0(SB)/8, $0x00001d2f00001d2f
DATA lumaWB<>+8(SB)/8, $0x00001d2f00001d2f
GLOBL lumaWB<>(SB), RODATA|NOPTR, $16
DATA lumaHalf<>+0(SB)/8, $0x0000800000008000
DATA lumaHalf<>+8(SB)/8, $0x0000800000008000
GLOBL lumaHalf<>(SB), RODATA|NOPTR, $16
DATA lumaRep<>+0(SB)/8, $0x0808040404000000
DATA lumaRep<>+8(SB)/8, $0x808080800c0c0c08
GLOBL lumaRep<>(SB), RODATA|NOPTR, $16

// LUMA4 computes Pillow's L of the 4 RGB pixels at (SI) (reading 16 bytes) into X2.
#define LUMA4 \
	MOVOU  (SI), X1  \
	MOVO   X1, X2    \
	PSHUFB X8, X2    \
	MOVO   X1, X3    \
	PSHUFB X9, X3    \
	PSHUFB X10, X1   \
	PMULLD X11, X2   \
	PMULLD X12, X3   \
	PMULLD X13, X1   \
	PADDL  X3, X2    \
	PADDL  X1, X2    \
	PADDL  X14, X2   \
	PSRLL  $16, X2

#define LUMACONST \
	MOVOU lumaR<>(SB), X8     \
	MOVOU lumaG<>(SB), X9     \
	MOVOU lumaB<>(SB), X10    \
	MOVOU lumaWR<>(SB), X11   \
	MOVOU lumaWG<>(SB), X12   \
	MOVOU lumaWB<>(SB), X13   \
	MOVOU lumaHalf<>(SB), X14

// func lumaSumSSE41(src *byte, groups int, sum *[4]uint32)
// Adds the L of groups*4 pixels (reading 4 bytes past them) into 4 lanes.
TEXT ·lumaSumSSE41(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ groups+8(FP), CX
	MOVQ sum+16(FP), DI
	LUMACONST
	PXOR X0, X0

sloop:
	LUMA4
	PADDL X2, X0
	ADDQ  $12, SI
	DECQ  CX
	JNZ   sloop
	MOVOU X0, (DI)
	RET

// func lumaGreySSE41(dst, src *byte, groups int)
// Writes each pixel's L to all three channels of dst, for groups*4 pixels (reading 4 bytes
// past them, writing exactly 12 bytes a group, so dst may be src).
TEXT ·lumaGreySSE41(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ groups+16(FP), CX
	LUMACONST
	MOVOU lumaRep<>(SB), X15

gloop:
	LUMA4
	PSHUFB X15, X2
	MOVQ   X2, (DI)
	PSRLDQ $8, X2
	MOVQ   X2, AX
	MOVL   AX, 8(DI)
	ADDQ   $12, SI
	ADDQ   $12, DI
	DECQ   CX
	JNZ    gloop
	RET

// func firRowsAVX2(dst *byte, n int, rows **byte, k *[4]uint32, taps int, bias uint32, shift uint64)
// firRowsSSE41 on 16 bytes an iteration (n a multiple of 16).
TEXT ·firRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	MOVQ         rows+16(FP), SI
	MOVQ         k+24(FP), R8
	MOVQ         taps+32(FP), R9
	MOVL         bias+40(FP), AX
	VMOVQ        AX, X6
	VPBROADCASTD X6, Y6
	MOVQ         shift+48(FP), DX
	VMOVQ        DX, X7
	XORQ         BX, BX

yloop:
	CMPQ    BX, CX
	JGE     ydone
	VMOVDQU Y6, Y0
	VMOVDQU Y6, Y3
	MOVQ    SI, R12
	MOVQ    R8, R13
	MOVQ    R9, R10

ytap:
	MOVQ         (R12), R11
	VPMOVZXBD    (R11)(BX*1), Y1
	VPMOVZXBD    8(R11)(BX*1), Y4
	VPBROADCASTD (R13), Y2
	VPMULLD      Y2, Y1, Y1
	VPMULLD      Y2, Y4, Y4
	VPADDD       Y1, Y0, Y0
	VPADDD       Y4, Y3, Y3
	ADDQ         $8, R12
	ADDQ         $16, R13
	DECQ         R10
	JNZ          ytap

	VPSRLD       X7, Y0, Y0
	VPSRLD       X7, Y3, Y3
	VPACKUSDW    Y3, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKUSWB    X1, X0, X0
	VMOVDQU      X0, (DI)(BX*1)
	ADDQ         $16, BX
	JMP          yloop

ydone:
	VZEROUPPER
	RET

// BOXSTORE adds the bias to the sums in Y0 and Y1 (bytes 0-7 and 8-15), shifts them and
// stores them, saturated to bytes, at DI+BX.
#define BOXSTORE \
	VPADDD       Y12, Y0, Y0; \
	VPADDD       Y12, Y1, Y1; \
	VPSRLD       X11, Y0, Y0; \
	VPSRLD       X11, Y1, Y1; \
	VPACKUSDW    Y1, Y0, Y0; \
	VPERMQ       $0xD8, Y0, Y0; \
	VEXTRACTI128 $1, Y0, X1; \
	VPACKUSWB    X1, X0, X0; \
	VMOVDQU      X0, (DI)(BX*1)

// func boxRowsAVX2(dst *byte, n int, rows **byte, taps int, kc, ke, bias uint32, shift uint64)
// firRowsAVX2 for a filter of 3 or 5 taps shaped (ke, kc, ..., kc, ke), as a box-blur pass
// is: two products per byte, kc * (sum of the middle taps) + ke * (first + last tap), equal
// to the fir's sum in uint32 arithmetic. n is a multiple of 16.
TEXT ·boxRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	MOVQ         rows+16(FP), SI
	MOVQ         taps+24(FP), DX
	MOVL         kc+32(FP), AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	MOVL         ke+36(FP), AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	MOVL         bias+40(FP), AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	VMOVQ        shift+48(FP), X11
	MOVQ         0(SI), R8
	MOVQ         8(SI), R9
	MOVQ         16(SI), R10
	XORQ         BX, BX
	CMPQ         DX, $5
	JEQ          box5

box3:
	VPMOVZXBD (R9)(BX*1), Y0
	VPMOVZXBD 8(R9)(BX*1), Y1
	VPMOVZXBD (R8)(BX*1), Y2
	VPMOVZXBD 8(R8)(BX*1), Y3
	VPMOVZXBD (R10)(BX*1), Y4
	VPMOVZXBD 8(R10)(BX*1), Y5
	VPADDD    Y4, Y2, Y2
	VPADDD    Y5, Y3, Y3
	VPMULLD   Y14, Y0, Y0
	VPMULLD   Y14, Y1, Y1
	VPMULLD   Y13, Y2, Y2
	VPMULLD   Y13, Y3, Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	BOXSTORE
	ADDQ      $16, BX
	CMPQ      BX, CX
	JLT       box3
	VZEROUPPER
	RET

box5:
	MOVQ 24(SI), R11
	MOVQ 32(SI), R12

box5loop:
	VPMOVZXBD (R9)(BX*1), Y0
	VPMOVZXBD 8(R9)(BX*1), Y1
	VPMOVZXBD (R10)(BX*1), Y2
	VPMOVZXBD 8(R10)(BX*1), Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	VPMOVZXBD (R11)(BX*1), Y2
	VPMOVZXBD 8(R11)(BX*1), Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	VPMOVZXBD (R8)(BX*1), Y2
	VPMOVZXBD 8(R8)(BX*1), Y3
	VPMOVZXBD (R12)(BX*1), Y4
	VPMOVZXBD 8(R12)(BX*1), Y5
	VPADDD    Y4, Y2, Y2
	VPADDD    Y5, Y3, Y3
	VPMULLD   Y14, Y0, Y0
	VPMULLD   Y14, Y1, Y1
	VPMULLD   Y13, Y2, Y2
	VPMULLD   Y13, Y3, Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	BOXSTORE
	ADDQ      $16, BX
	CMPQ      BX, CX
	JLT       box5loop
	VZEROUPPER
	RET

// BLEND16 blends 16 bytes at DI+BX: Y1, Y2 hold them minus D as int32 lanes, Y3, Y4 hold D
// as float32 lanes; f is in Y5.
#define BLEND16 \
	VCVTDQ2PS    Y1, Y1; \
	VCVTDQ2PS    Y2, Y2; \
	VMULPS       Y5, Y1, Y1; \
	VMULPS       Y5, Y2, Y2; \
	VADDPS       Y3, Y1, Y1; \
	VADDPS       Y4, Y2, Y2; \
	VCVTTPS2DQ   Y1, Y1; \
	VCVTTPS2DQ   Y2, Y2; \
	VPACKUSDW    Y2, Y1, Y1; \
	VPERMQ       $0xD8, Y1, Y1; \
	VEXTRACTI128 $1, Y1, X2; \
	VPACKUSWB    X2, X1, X1; \
	VMOVDQU      X1, (DI)(BX*1)

// func blendAVX2(pix *byte, deg *byte, n int, d uint32, f float32)
// blendSSE41 on 16 bytes an iteration (n a multiple of 16).
TEXT ·blendAVX2(SB), NOSPLIT, $0-32
	MOVQ         pix+0(FP), DI
	MOVQ         deg+8(FP), SI
	MOVQ         n+16(FP), CX
	MOVL         d+24(FP), AX
	VBROADCASTSS f+28(FP), Y5
	VMOVD        AX, X6
	VPBROADCASTD X6, Y6
	VCVTDQ2PS    Y6, Y7
	XORQ         BX, BX
	TESTQ        CX, CX
	JZ           vbdone
	TESTQ        SI, SI
	JNZ          vbimg

vbconst:
	VPMOVZXBD (DI)(BX*1), Y1
	VPMOVZXBD 8(DI)(BX*1), Y2
	VPSUBD    Y6, Y1, Y1
	VPSUBD    Y6, Y2, Y2
	VMOVDQA   Y7, Y3
	VMOVDQA   Y7, Y4
	BLEND16
	ADDQ      $16, BX
	CMPQ      BX, CX
	JLT       vbconst
	VZEROUPPER
	RET

vbimg:
	VPMOVZXBD (DI)(BX*1), Y1
	VPMOVZXBD 8(DI)(BX*1), Y2
	VPMOVZXBD (SI)(BX*1), Y3
	VPMOVZXBD 8(SI)(BX*1), Y4
	VPSUBD    Y3, Y1, Y1
	VPSUBD    Y4, Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	BLEND16
	ADDQ      $16, BX
	CMPQ      BX, CX
	JLT       vbimg

vbdone:
	VZEROUPPER
	RET

// H2HEAD points R11 and R13 at the windows of the next two output pixels and loads the
// rounding offset into the accumulators Y0 and Y8.
#define H2HEAD \
	MOVLQSX (R8), R11; \
	LEAQ    (R11)(R11*2), R11; \
	ADDQ    SI, R11; \
	MOVLQSX 4(R8), R13; \
	LEAQ    (R13)(R13*2), R13; \
	ADDQ    SI, R13; \
	VMOVDQA Y6, Y0; \
	VPXOR   Y8, Y8, Y8

// H2TAP adds one tap (window byte offset off, weights at woff(R9)) of both pixels into acc.
#define H2TAP(off, woff, acc) \
	VPMOVZXBD   off(R11), X1; \
	VPMOVZXBD   off(R13), X2; \
	VINSERTI128 $1, X2, Y1, Y1; \
	VPMULLD     woff(R9), Y1, Y1; \
	VPADDD      Y1, acc, acc

// H2TAIL stores the two pixels (and one byte past them) and moves to the next pair.
#define H2TAIL \
	VPADDD       Y8, Y0, Y0; \
	VPSRLD       X7, Y0, Y0; \
	VPACKUSDW    Y0, Y0, Y0; \
	VPACKUSWB    Y0, Y0, Y0; \
	VMOVD        X0, (DI); \
	VEXTRACTI128 $1, Y0, X1; \
	VMOVD        X1, 3(DI); \
	ADDQ         $6, DI; \
	ADDQ         $8, R8

// func resampleH2AVX2(dst *byte, pairs int, src *byte, pos *int32, w *[8]int32, taps int)
// resampleHSSE41 on two output pixels an iteration, one in each 128-bit lane; w holds, per
// pair and tap, the first pixel's weight 4 times, then the second's. It writes one byte past
// each pair. Filters of 2 to 8 taps have unrolled loops.
TEXT ·resampleH2AVX2(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         pairs+8(FP), CX
	MOVQ         src+16(FP), SI
	MOVQ         pos+24(FP), R8
	MOVQ         w+32(FP), R9
	MOVQ         taps+40(FP), R10
	MOVL         $0x200000, AX
	VMOVD        AX, X6
	VPBROADCASTD X6, Y6
	MOVL         $22, DX
	VMOVD        DX, X7
	TESTQ        CX, CX
	JZ           h2done
	CMPQ         R10, $2
	JEQ          h2taps2
	CMPQ         R10, $3
	JEQ          h2taps3
	CMPQ         R10, $4
	JEQ          h2taps4
	CMPQ         R10, $5
	JEQ          h2taps5
	CMPQ         R10, $6
	JEQ          h2taps6
	CMPQ         R10, $7
	JEQ          h2taps7
	CMPQ         R10, $8
	JEQ          h2taps8

h2loop:
	H2HEAD
	MOVQ R10, R12

h2tap:
	H2TAP(0, 0, Y0)
	ADDQ $3, R11
	ADDQ $3, R13
	ADDQ $32, R9
	DECQ R12
	JNZ  h2tap
	H2TAIL
	DECQ CX
	JNZ  h2loop
	JMP  h2done

h2taps2:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	ADDQ $(64), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps2
	JMP  h2done

h2taps3:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	H2TAP(6, 64, Y0)
	ADDQ $(96), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps3
	JMP  h2done

h2taps4:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	H2TAP(6, 64, Y0)
	H2TAP(9, 96, Y8)
	ADDQ $(128), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps4
	JMP  h2done

h2taps5:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	H2TAP(6, 64, Y0)
	H2TAP(9, 96, Y8)
	H2TAP(12, 128, Y0)
	ADDQ $(160), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps5
	JMP  h2done

h2taps6:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	H2TAP(6, 64, Y0)
	H2TAP(9, 96, Y8)
	H2TAP(12, 128, Y0)
	H2TAP(15, 160, Y8)
	ADDQ $(192), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps6
	JMP  h2done

h2taps7:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	H2TAP(6, 64, Y0)
	H2TAP(9, 96, Y8)
	H2TAP(12, 128, Y0)
	H2TAP(15, 160, Y8)
	H2TAP(18, 192, Y0)
	ADDQ $(224), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps7
	JMP  h2done

h2taps8:
	H2HEAD
	H2TAP(0, 0, Y0)
	H2TAP(3, 32, Y8)
	H2TAP(6, 64, Y0)
	H2TAP(9, 96, Y8)
	H2TAP(12, 128, Y0)
	H2TAP(15, 160, Y8)
	H2TAP(18, 192, Y0)
	H2TAP(21, 224, Y8)
	ADDQ $(256), R9
	H2TAIL
	DECQ CX
	JNZ  h2taps8
	JMP  h2done

h2done:
	VZEROUPPER
	RET

// func firRowsAVX2Unrolled(dst *byte, n int, rows **byte, k *[4]uint32, taps int, bias uint32, shift uint64)
// firRowsAVX2 for 2 to 6 taps, with the row pointers and weights held in registers.
TEXT ·firRowsAVX2Unrolled(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	MOVQ         rows+16(FP), SI
	MOVQ         k+24(FP), AX
	MOVQ         taps+32(FP), DX
	MOVL         bias+40(FP), BX
	VMOVD        BX, X6
	VPBROADCASTD X6, Y6
	VMOVQ        shift+48(FP), X7
	XORQ         BX, BX
	TESTQ        CX, CX
	JZ           udone
	CMPQ         DX, $2
	JEQ          utaps2
	CMPQ         DX, $3
	JEQ          utaps3
	CMPQ         DX, $4
	JEQ          utaps4
	CMPQ         DX, $5
	JEQ          utaps5
	CMPQ         DX, $6
	JEQ          utaps6
	JMP          udone

utaps2:
	MOVQ         0(SI), R8
	VPBROADCASTD 0(AX), Y8
	MOVQ         8(SI), R9
	VPBROADCASTD 16(AX), Y9

uloop2:
	VMOVDQA   Y6, Y0
	VMOVDQA   Y6, Y3
	VPMOVZXBD (R8)(BX*1), Y1
	VPMOVZXBD 8(R8)(BX*1), Y4
	VPMULLD   Y8, Y1, Y1
	VPMULLD   Y8, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R9)(BX*1), Y1
	VPMOVZXBD 8(R9)(BX*1), Y4
	VPMULLD   Y9, Y1, Y1
	VPMULLD   Y9, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPSRLD       X7, Y0, Y0
	VPSRLD       X7, Y3, Y3
	VPACKUSDW    Y3, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKUSWB    X1, X0, X0
	VMOVDQU      X0, (DI)(BX*1)
	ADDQ         $16, BX
	CMPQ         BX, CX
	JLT          uloop2
	JMP          udone

utaps3:
	MOVQ         0(SI), R8
	VPBROADCASTD 0(AX), Y8
	MOVQ         8(SI), R9
	VPBROADCASTD 16(AX), Y9
	MOVQ         16(SI), R10
	VPBROADCASTD 32(AX), Y10

uloop3:
	VMOVDQA   Y6, Y0
	VMOVDQA   Y6, Y3
	VPMOVZXBD (R8)(BX*1), Y1
	VPMOVZXBD 8(R8)(BX*1), Y4
	VPMULLD   Y8, Y1, Y1
	VPMULLD   Y8, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R9)(BX*1), Y1
	VPMOVZXBD 8(R9)(BX*1), Y4
	VPMULLD   Y9, Y1, Y1
	VPMULLD   Y9, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R10)(BX*1), Y1
	VPMOVZXBD 8(R10)(BX*1), Y4
	VPMULLD   Y10, Y1, Y1
	VPMULLD   Y10, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPSRLD       X7, Y0, Y0
	VPSRLD       X7, Y3, Y3
	VPACKUSDW    Y3, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKUSWB    X1, X0, X0
	VMOVDQU      X0, (DI)(BX*1)
	ADDQ         $16, BX
	CMPQ         BX, CX
	JLT          uloop3
	JMP          udone

utaps4:
	MOVQ         0(SI), R8
	VPBROADCASTD 0(AX), Y8
	MOVQ         8(SI), R9
	VPBROADCASTD 16(AX), Y9
	MOVQ         16(SI), R10
	VPBROADCASTD 32(AX), Y10
	MOVQ         24(SI), R11
	VPBROADCASTD 48(AX), Y11

uloop4:
	VMOVDQA   Y6, Y0
	VMOVDQA   Y6, Y3
	VPMOVZXBD (R8)(BX*1), Y1
	VPMOVZXBD 8(R8)(BX*1), Y4
	VPMULLD   Y8, Y1, Y1
	VPMULLD   Y8, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R9)(BX*1), Y1
	VPMOVZXBD 8(R9)(BX*1), Y4
	VPMULLD   Y9, Y1, Y1
	VPMULLD   Y9, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R10)(BX*1), Y1
	VPMOVZXBD 8(R10)(BX*1), Y4
	VPMULLD   Y10, Y1, Y1
	VPMULLD   Y10, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R11)(BX*1), Y1
	VPMOVZXBD 8(R11)(BX*1), Y4
	VPMULLD   Y11, Y1, Y1
	VPMULLD   Y11, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPSRLD       X7, Y0, Y0
	VPSRLD       X7, Y3, Y3
	VPACKUSDW    Y3, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKUSWB    X1, X0, X0
	VMOVDQU      X0, (DI)(BX*1)
	ADDQ         $16, BX
	CMPQ         BX, CX
	JLT          uloop4
	JMP          udone

utaps5:
	MOVQ         0(SI), R8
	VPBROADCASTD 0(AX), Y8
	MOVQ         8(SI), R9
	VPBROADCASTD 16(AX), Y9
	MOVQ         16(SI), R10
	VPBROADCASTD 32(AX), Y10
	MOVQ         24(SI), R11
	VPBROADCASTD 48(AX), Y11
	MOVQ         32(SI), R12
	VPBROADCASTD 64(AX), Y12

uloop5:
	VMOVDQA   Y6, Y0
	VMOVDQA   Y6, Y3
	VPMOVZXBD (R8)(BX*1), Y1
	VPMOVZXBD 8(R8)(BX*1), Y4
	VPMULLD   Y8, Y1, Y1
	VPMULLD   Y8, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R9)(BX*1), Y1
	VPMOVZXBD 8(R9)(BX*1), Y4
	VPMULLD   Y9, Y1, Y1
	VPMULLD   Y9, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R10)(BX*1), Y1
	VPMOVZXBD 8(R10)(BX*1), Y4
	VPMULLD   Y10, Y1, Y1
	VPMULLD   Y10, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R11)(BX*1), Y1
	VPMOVZXBD 8(R11)(BX*1), Y4
	VPMULLD   Y11, Y1, Y1
	VPMULLD   Y11, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R12)(BX*1), Y1
	VPMOVZXBD 8(R12)(BX*1), Y4
	VPMULLD   Y12, Y1, Y1
	VPMULLD   Y12, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPSRLD       X7, Y0, Y0
	VPSRLD       X7, Y3, Y3
	VPACKUSDW    Y3, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKUSWB    X1, X0, X0
	VMOVDQU      X0, (DI)(BX*1)
	ADDQ         $16, BX
	CMPQ         BX, CX
	JLT          uloop5
	JMP          udone

utaps6:
	MOVQ         0(SI), R8
	VPBROADCASTD 0(AX), Y8
	MOVQ         8(SI), R9
	VPBROADCASTD 16(AX), Y9
	MOVQ         16(SI), R10
	VPBROADCASTD 32(AX), Y10
	MOVQ         24(SI), R11
	VPBROADCASTD 48(AX), Y11
	MOVQ         32(SI), R12
	VPBROADCASTD 64(AX), Y12
	MOVQ         40(SI), R13
	VPBROADCASTD 80(AX), Y13

uloop6:
	VMOVDQA   Y6, Y0
	VMOVDQA   Y6, Y3
	VPMOVZXBD (R8)(BX*1), Y1
	VPMOVZXBD 8(R8)(BX*1), Y4
	VPMULLD   Y8, Y1, Y1
	VPMULLD   Y8, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R9)(BX*1), Y1
	VPMOVZXBD 8(R9)(BX*1), Y4
	VPMULLD   Y9, Y1, Y1
	VPMULLD   Y9, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R10)(BX*1), Y1
	VPMOVZXBD 8(R10)(BX*1), Y4
	VPMULLD   Y10, Y1, Y1
	VPMULLD   Y10, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R11)(BX*1), Y1
	VPMOVZXBD 8(R11)(BX*1), Y4
	VPMULLD   Y11, Y1, Y1
	VPMULLD   Y11, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R12)(BX*1), Y1
	VPMOVZXBD 8(R12)(BX*1), Y4
	VPMULLD   Y12, Y1, Y1
	VPMULLD   Y12, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPMOVZXBD (R13)(BX*1), Y1
	VPMOVZXBD 8(R13)(BX*1), Y4
	VPMULLD   Y13, Y1, Y1
	VPMULLD   Y13, Y4, Y4
	VPADDD    Y1, Y0, Y0
	VPADDD    Y4, Y3, Y3
	VPSRLD       X7, Y0, Y0
	VPSRLD       X7, Y3, Y3
	VPACKUSDW    Y3, Y0, Y0
	VPERMQ       $0xD8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPACKUSWB    X1, X0, X0
	VMOVDQU      X0, (DI)(BX*1)
	ADDQ         $16, BX
	CMPQ         BX, CX
	JLT          uloop6
	JMP          udone

udone:
	VZEROUPPER
	RET
