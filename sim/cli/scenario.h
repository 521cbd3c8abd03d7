// Moved: scenario loading is the library sim/scenario/ (the composition root). This header forwards to it.
#pragma once
#include "sim/scenario/scenario.h"
