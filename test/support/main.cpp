// The shared main of every test executable.
#define BOOST_TEST_MODULE asioloop
#include <boost/test/unit_test.hpp>
