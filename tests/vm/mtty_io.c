// Reads and writes an mtty UART through a VFIO device fd: what a VMM does
// with a device it took from vfio-migd. Run it under
//   vfio-migctl open DEVICE -- mtty_io ...
// which passes the device fd as fd 3 and VFIO_DEVICE_FD=3.
//
// mtty's BARn is UART port n, an 8-byte I/O region at device fd offset
// n << 40 (VFIO_PCI_BARn_REGION_INDEX). Offset 0 is TX on write (pushes into
// a loopback FIFO) and RX on read (pops it), 5 is LSR (bit 0: data ready),
// 7 is the scratch register.
//
//   mtty_io write PORT TEXT SCRATCH   push TEXT into the FIFO, set scratch
//                                     (hex)
//   mtty_io read PORT                 print "<fifo text> <scratch hex>",
//                                     draining the FIFO
//
// C, built statically by run.sh: in the TCG guest every file a program
// loads comes over 9p, which makes an interpreter start-up cost seconds.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kRxTx = 0, kLsr = 5, kScratch = 7, kLsrDataReady = 0x01 };

static int fd;
static uint64_t base;

static void put(uint64_t offset, uint8_t byte) {
  if (pwrite(fd, &byte, 1, (off_t)(base + offset)) != 1) {
    perror("mtty_io: pwrite");
    exit(1);
  }
}

static uint8_t get(uint64_t offset) {
  uint8_t byte = 0;
  if (pread(fd, &byte, 1, (off_t)(base + offset)) != 1) {
    perror("mtty_io: pread");
    exit(1);
  }
  return byte;
}

int main(int argc, char** argv) {
  const char* env = getenv("VFIO_DEVICE_FD");
  fd = env != NULL ? atoi(env) : 3;
  if (argc < 3) {
    fprintf(stderr, "usage: mtty_io write PORT TEXT SCRATCH | read PORT\n");
    return 2;
  }
  base = (uint64_t)strtoul(argv[2], NULL, 10) << 40;
  if (strcmp(argv[1], "write") == 0 && argc == 5) {
    for (const char* c = argv[3]; *c != '\0'; ++c) put(kRxTx, (uint8_t)*c);
    put(kScratch, (uint8_t)strtoul(argv[4], NULL, 16));
    return 0;
  }
  if (strcmp(argv[1], "read") == 0 && argc == 3) {
    const uint8_t scratch = get(kScratch);
    char text[65] = {0};
    for (int i = 0; i < 64 && (get(kLsr) & kLsrDataReady); ++i) {
      text[i] = (char)get(kRxTx);
    }
    printf("%s %02x\n", text, scratch);
    return 0;
  }
  fprintf(stderr, "usage: mtty_io write PORT TEXT SCRATCH | read PORT\n");
  return 2;
}
