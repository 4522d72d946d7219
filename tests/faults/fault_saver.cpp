// fault_saver — saves documents through a backend plugin and reports each
// outcome, for the fault-injection tests (run under the fault shim):
//   fault_saver BACKEND STATE_DIR SESSION FIRST COUNT
// saves make_doc(.., k) for k = FIRST .. FIRST+COUNT-1 and prints
// "OK k" or "FAIL k <error>" per save; keeps going after a failure.
#include <tradestate_test/support.hpp>

#include <iostream>

using namespace tradestate;
using namespace tradestate::testing;

int main(int argc, char** argv) {
    if (argc != 6) {
        std::cerr << "usage: fault_saver BACKEND STATE_DIR SESSION FIRST COUNT\n";
        return 2;
    }
    try {
        auto b = open_backend(argv[1], options_in(argv[2], true));
        const std::int64_t first = std::atoll(argv[4]), count = std::atoll(argv[5]);
        for (std::int64_t k = first; k < first + count; ++k) {
            try {
                save_doc(*b, argv[3], make_doc(30, 20, static_cast<std::uint64_t>(k), k));
                std::cout << "OK " << k << std::endl;
            } catch (const std::exception& e) {
                std::string m = e.what();
                for (auto& c : m)
                    if (c == '\n') c = ' ';
                std::cout << "FAIL " << k << " " << m << std::endl;
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cout << "ERROR " << e.what() << std::endl;
        return 1;
    }
}
