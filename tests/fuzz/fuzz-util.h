/*
 * Shared pieces of the libFuzzer targets (docs/fuzzing.md): the hostile
 * image as a file the block layer opens by name, a cursor over the input,
 * and the TIS MMIO sequence both TIS targets run.
 */
#ifndef TESTS_FUZZ_FUZZ_UTIL_H
#define TESTS_FUZZ_FUZZ_UTIL_H

#include "qemu/osdep.h"
#include "crypto/key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The raw key every keyed target uses (32 bytes). */
extern const QCryptoKey fuzz_raw_key;

/*
 * A memory-backed file holding exactly @data; the name stays valid until the
 * next call, which replaces its contents.
 */
const char *fuzz_image_file(const uint8_t *data, size_t len);

/* A cursor over the input: reads past the end return zeros. */
typedef struct FuzzInput {
    const uint8_t *p;
    size_t left;
} FuzzInput;

uint8_t fuzz_u8(FuzzInput *in);
uint32_t fuzz_u32(FuzzInput *in);
/* Up to @max bytes (fewer at the end), as a pointer into the input. */
const uint8_t *fuzz_bytes(FuzzInput *in, size_t max, size_t *len);

typedef struct TPMBackend TPMBackend;
/*
 * Runs @data as MMIO operations on the TIS at its guest address, then waits
 * for the backend and resets the device so the next input starts equal.
 * Each operation: op byte (bit 0 write, bits 1-2 log2 size, bits 3-5
 * locality mod 5, bit 6 let the main loop run), a 16-bit little-endian
 * register offset (mod 0x1000), and for a write its value's bytes.
 */
void fuzz_tis_run(TPMBackend *be, const uint8_t *data, size_t len);

/* Creates the TIS in front of @be once; returns false with a message. */
bool fuzz_tis_create(TPMBackend *be);

#endif
