/*
 * board.c - the "board" examples/kernel.c runs on: 2 MiB of RAM (a
 * static array) and a console (stdout), played by a Linux process.  A
 * real kernel has these from its platform code instead.
 */
#include <stdlib.h>
#include <unistd.h>

#include <stddef.h>

char board_ram[2 << 20] __attribute__((aligned(4096)));
const size_t board_ram_size = sizeof board_ram;

void board_console(const char *text, size_t len)
{
    (void)!write(STDOUT_FILENO, text, len);
}

_Noreturn void board_halt(int code)
{
    exit(code);
}

int kernel_main(void);

int main(void)
{
    return kernel_main();
}
