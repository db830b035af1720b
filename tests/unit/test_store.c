/* Placeholder replaced below. */
#include <criterion/criterion.h>
