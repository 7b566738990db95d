# A toolchain file as a bare-metal project writes one: the GNU Arm Embedded compiler, the CPU flags
# given as CPU_FLAGS (e.g. "-mthumb -mcpu=cortex-m4 -mfloat-abi=hard").
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CPU_FLAGS "" CACHE STRING "the CPU's compiler flags")
set(CMAKE_C_FLAGS_INIT "${CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${CPU_FLAGS}")
