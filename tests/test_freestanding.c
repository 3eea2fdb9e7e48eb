/* placeholder, filled below */
#include "slab_test.h"
int main(void) { return 0; }
