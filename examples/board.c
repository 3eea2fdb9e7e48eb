/*
 * board.c - the board examples/kernel.c runs on, played by a Linux
 * process: 2 MiB of RAM (a static array), a console (stdout), and main()
 * as the boot code that calls kernel_main().
 */
#include <stddef.h>
#include <unistd.h>

char board_ram[2 << 20] __attribute__((aligned(4096)));
const size_t board_ram_size = sizeof board_ram;

void board_console(const char *text, size_t len)
{
    (void)!write(STDOUT_FILENO, text, len);
}

int kernel_main(void);

int main(void)
{
    return kernel_main();
}
