/* Internals of the SPDY codec. */
#pragma once

#include "spdy.h"

#define CRISP_SPDY_DICTIONARY_SIZE 1423
extern const unsigned char crisp_spdy_dictionary[CRISP_SPDY_DICTIONARY_SIZE];
