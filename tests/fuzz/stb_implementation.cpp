// stb_image compiled into the fuzz targets, so that the fuzzer sees (and the sanitizers check)
// the decoder's own code; the main build links Debian's libstb instead.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
